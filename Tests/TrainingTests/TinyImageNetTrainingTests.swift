import Datasets
import Foundation
import Kernels
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct TinyImageNetTrainingTests {
    init() { Threads.set(2) }

    func tinyConfig() -> TrainConfig {
        var c = TrainConfig()
        c.dataset = "tiny-imagenet"
        c.model = "resnet20"
        c.epochs = 1
        c.batchSize = 32
        c.seed = 1
        return c
    }

    /// ResNet-20 on Fashion-MNIST written as a Tiny-ImageNet JPEG tree (100 train / 20 val images per class,
    /// prepared by `TinyImageNet.prepare`), trained through the Tiny-ImageNet pipelines at image_size 32 for
    /// one epoch: above chance (10%) on the 200 val images. Seen: 39.5% val top-1 (train loss 1.89), seed 1, 2 threads.
    @Test(.enabled(if: FashionTree.available, FashionTree.skipMessage))
    func resnet20LearnsThePreparedFashionTree() throws {
        let work = temporaryDirectory("tiny-data")
        defer { try? FileManager.default.removeItem(at: work) }
        let tree = try FashionTree.make(in: work.path, train: 100, val: 20)
        let root = work.appendingPathComponent("data").path
        try TinyImageNet.prepare(from: tree, root: root)

        var c = tinyConfig()
        c.imageSize = 32
        // One epoch: a per-iteration cosine from 0.05 to 0 (a constant 0.1 ends with unsettled BN statistics).
        c.schedule = .warmupCosine
        c.warmupIterations = 0
        c.lr = 0.05
        let dir = work.appendingPathComponent("run")
        let t = Trainer(config: c, runDirectory: dir, dataRoot: root)
        t.progress.quiet = true
        let record = try t.train()
        #expect(record.status == "finished")
        let top1 = try #require(record.lastTop1)
        #expect(top1 > 30, "val top-1 after 1 epoch on 1,000 images: \(top1)%")
        print("tiny-imagenet (Fashion tree) resnet20 image_size 32, 1 epoch: val top-1 \(top1)%, train loss \(record.epochs[0].trainLoss)")
    }

    @Test func withoutPreparedDataTrainingStopsBeforeCreatingTheRun() throws {
        let work = temporaryDirectory("tiny-missing")
        defer { try? FileManager.default.removeItem(at: work) }
        let dir = work.appendingPathComponent("run")
        let t = Trainer(config: tinyConfig(), runDirectory: dir, dataRoot: work.appendingPathComponent("empty").path)
        var message = ""
        do { try t.train() } catch { message = "\(error)" }
        #expect(!message.contains("\n") && message.contains(TinyImageNet.downloadURL) && message.contains("sqakd data prepare tiny-imagenet --from"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: dir.path))
    }

    @Test func imageSizeIsOptionalAndOnlyTinyImageNetResizes() throws {
        // Absent: not part of the stored config, so every existing run id is unchanged.
        #expect(TrainConfig().changedValues["image_size"] == nil)
        #expect(TrainConfig().values["image_size"] == nil)
        var c = TrainConfig()
        c.imageSize = 64
        c.dataset = "tiny-imagenet"
        #expect(c.issues().isEmpty)
        #expect(c.changedValues["image_size"] == .integer(64))
        #expect(c.runID != { var d = c; d.imageSize = nil; return d.runID }())
        let resolved = try TrainConfig.resolve([try ConfigOverlay.assignments(["dataset=tiny-imagenet", "image_size=96"])])
        #expect(resolved.imageSize == 96)
        c.imageSize = 4
        #expect(c.issues().map(\.key) == ["image_size"])
        var f = TrainConfig()
        f.imageSize = 32
        #expect(f.issues().isEmpty)
        f.imageSize = 64
        var message = ""
        do { _ = try TrainConfig.resolve([try ConfigOverlay.assignments(["image_size=64"])]) } catch { message = "\(error)" }
        #expect(message == "--set image_size=64: 'image_size' is 64, but fashion-mnist trains at its stored 32×32 only (omit image_size or give 32; only tiny-imagenet resizes)")
    }
}
