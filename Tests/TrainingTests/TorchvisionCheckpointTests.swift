import Datasets
import Foundation
import Models
import NN
import Tensors
import Testing
@testable import Training

/// A ShuffleNet-V2 ×0.5 trained by torchvision (60 SGD steps on Fashion-MNIST at 64×64, 10 classes;
/// scripts/make_torchvision_checkpoint.py, whose docstring gives the preprocessing) loads strictly through
/// `Checkpoint.loadModel` exactly as torch saved it (torch names, 0-d int64 `num_batches_tracked`, no
/// metadata), and `evaluate` on the same 64 test images gives torch's eval-mode top-1 exactly, its mean
/// cross-entropy within 1e-4 and its logits within 1e-4 (atol and rtol).
@Suite("torchvision checkpoint")
struct TorchvisionCheckpointTests {
    static let hint = "regenerate with `/usr/bin/python3 scripts/make_torchvision_checkpoint.py` (repository root)"

    func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Golden"),
                     "missing Golden/\(name).safetensors; \(Self.hint)")
    }

    @Test func shuffleNetLoadsStrictlyAndEvaluatesAsTorch() throws {
        let model = try Checkpoint.loadModel(from: try url("shufflenet_v2_x0_5_fmnist"), architecture: "shufflenet_v2_x0_5")
        #expect(model.classes == 10 && model.inputChannels == 3)
        let golden = try SafetensorsFile.read(try url("shufflenet_v2_x0_5_fmnist_eval"))
        let gray = try #require(golden.tensors["images"]).array, labels = try #require(golden.tensors["labels"]).array.map { Int32($0) }
        let count = labels.count, side = 64
        #expect(count == 64 && gray.count == count * side * side)
        // Gray levels replicated to RGB, as the script feeds torch.
        var rgb = [UInt8](repeating: 0, count: count * 3 * side * side)
        for n in 0..<count {
            for c in 0..<3 {
                for p in 0..<side * side { rgb[(n * 3 + c) * side * side + p] = UInt8(gray[n * side * side + p]) }
            }
        }
        let dataset = Dataset(name: "fashion-mnist-64", channels: 3, height: side, width: side, images: rgb, labels: labels,
                              classCount: 10, normalization: Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]))
        let result = try evaluate(model, on: dataset, batchSize: count)
        let top1 = Int(try #require(golden.tensors["top1"])[0]), loss = Double(try #require(golden.tensors["loss"])[0])
        #expect(result.count == count)
        #expect(Int((result.top1 * Double(count) / 100).rounded()) == top1, "top-1 \(result.top1)% vs torch \(top1)/\(count); \(Self.hint)")
        #expect(abs(result.loss - loss) <= 1e-4, "loss \(result.loss) vs torch \(loss); \(Self.hint)")

        var batches = try BatchLoader.evaluation(dataset, batchSize: count).batches(epoch: 0, prefetch: false)
        let batch = try #require(batches.next())
        let logits = model.forward(batch.images, mode: .eval).plainArray, expected = try #require(golden.tensors["logits"]).array
        let worst = zip(logits, expected).map { abs($0 - $1) - 1e-4 * abs($1) }.max() ?? .infinity
        #expect(logits.count == expected.count && worst <= 1e-4, "logits differ by up to \(worst) beyond rtol; \(Self.hint)")
    }
}
