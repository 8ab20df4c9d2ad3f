import Datasets
import Foundation
import Models
import NN
import Tensors

public struct EvalResult: Sendable {
    public var loss: Double
    public var top1: Double
    public var top5: Double
    public var count: Int
}

/// Top-1 / top-5 (%) and mean cross-entropy of `model` in eval mode over a whole dataset, in file order,
/// each image through `transform` (`DatasetKind.evaluationTransform`; default normalisation only).
/// The mean loss is Σ over batches of (batch mean · batch size) / count, as the reference's averaging does.
public func evaluate(_ model: any Model, on dataset: Dataset, batchSize: Int, transform: Augmentation = .none) throws -> EvalResult {
    let loader = try BatchLoader.evaluation(dataset, batchSize: batchSize, transform: transform)
    let ce = CrossEntropyLoss()
    var lossSum = 0.0, c1 = 0, c5 = 0, n = 0
    for batch in loader.batches(epoch: 0) {
        let logits = model.forward(batch.images, mode: .eval)
        let (loss, _) = ce(logits, labels: batch.labels)
        lossSum += loss * Double(batch.count)
        c1 += topKCorrect(logits, labels: batch.labels, k: 1)
        c5 += topKCorrect(logits, labels: batch.labels, k: min(5, model.classes))
        n += batch.count
    }
    guard n > 0 else { throw ConfigError("the evaluation set \(dataset.name) is empty") }
    return EvalResult(loss: lossSum / Double(n), top1: 100 * Double(c1) / Double(n), top5: 100 * Double(c5) / Double(n), count: n)
}
