import Datasets
import Foundation
import Kernels
import Testing
@testable import Training

@Suite(.serialized) struct TrainSetEvaluationTests {
    init() { Threads.set(2) }

    /// `eval_train_set`: each epoch also evaluates the images trained on, in eval mode, and records it; the
    /// recorded figure is what evaluating the last checkpoint on that set gives. Off, the record has no such key.
    @Test func evaluatesTheTrainingSetOnlyWhenAsked() throws {
        var config = smallConfig(train: 128, test: 64, epochs: 1)
        config.evalTrainSet = true
        let dir = temporaryDirectory("train-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let record = try quietTrainer(config, dir).train()
        let e = try #require(record.epochs.first)
        let top1 = try #require(e.trainEvalTop1), loss = try #require(e.trainEvalLoss)
        let train = try DatasetKind(id: "fashion-mnist").load(root: nil, split: .train).limited(.first(128))
        let model = try Checkpoint.loadModel(from: RunDirectory(dir).checkpoint(epoch: 1))
        let again = try evaluate(model, on: train, batchSize: config.evalBatchSize)
        #expect(again.top1 == top1 && again.loss == loss)
        let csv = try String(contentsOf: dir.appendingPathComponent("metrics.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,seconds,images_per_second,train_eval_loss,train_eval_top1\n"))

        let plain = temporaryDirectory("no-train-eval")
        defer { try? FileManager.default.removeItem(at: plain) }
        config.evalTrainSet = false
        try quietTrainer(config, plain).train()
        let json = try String(contentsOf: plain.appendingPathComponent("record.json"), encoding: .utf8)
        #expect(!json.contains("train_eval_") && json.contains("\"eval_train_set\" : false"))
    }
}
