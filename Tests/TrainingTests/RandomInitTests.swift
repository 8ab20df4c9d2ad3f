import Foundation
import Models
import NN
import Tensors
import Testing
@testable import Training

/// `random_init`: a quantized student that does not start from the teacher's weights (the authors'
/// Tiny-ImageNet VGG-11 W3A3 SQAKD row, §5.3).
@Suite struct RandomInitTests {
    @Test func studentStartsFromItsOwnInitialisation() throws {
        let dir = temporaryDirectory("random-init")
        defer { try? FileManager.default.removeItem(at: dir) }
        let teacherURL = dir.appendingPathComponent("teacher.safetensors")
        let teacher = try ModelZoo.make("resnet20", classes: 10, seed: 3)
        try Checkpoint.saveModel(teacher, to: teacherURL)
        func setup(_ random: Bool) throws -> TrainingSetup {
            var c = Recipe.cifarQAT.defaults(distill: .sqakd)
            c.quantizer = "ewgs"
            c.bits = 2
            c.seed = 5
            c.distill = .sqakd
            c.teacher = teacherURL.path
            c.randomInit = random
            try c.validate()
            return try TrainingSetup(config: c, classes: 10, inputChannels: 3, iterationsPerEpoch: 1)
        }
        let reference = teacher.namedTensors().first { $0.name == "layer1.0.conv1.weight" }!.tensor.array
        func weight(_ s: TrainingSetup) -> [Float] {
            s.student.namedTensors().first { $0.name == "layer1.0.conv1.weight" }!.tensor.array
        }
        #expect(weight(try setup(false)) == reference)
        let random = try setup(true)
        #expect(weight(random) != reference)
        #expect(weight(random) == weight(try setup(true)))
        #expect(random.teacher != nil)
    }

    @Test func onlyForQuantizedRunsWithoutInitFrom() throws {
        var fp = TrainConfig()
        fp.randomInit = true
        #expect(fp.issues().map(\.key) == ["random_init"])
        var q = Recipe.cifarQAT.defaults()
        q.quantizer = "ewgs"
        q.bits = 2
        q.randomInit = true
        q.initFrom = "runs/t"
        #expect(q.issues().map(\.key) == ["random_init"])
        q.initFrom = nil
        #expect(q.issues().isEmpty)
    }
}

@Suite struct ActivationPlacementConfigTests {
    @Test func perLayerActivationQuantizersOnlyForTinyImageNetStyle() {
        var c = TrainConfig()
        c.quantizer = "lsq"
        c.bits = 4
        c.perLayerActivationQuantizers = true
        #expect(c.issues().map(\.key) == ["per_layer_activation_quantizers"])
        c.style = .tinyImageNet
        #expect(c.issues().isEmpty)
    }
}
