import TestSupport
import Testing
import NN
import Tensors
@testable import Models

@Suite("State dict")
struct StateDictTests {
    func model(seed: UInt64) throws -> any Model { try ModelZoo.make("resnet20", classes: 10, seed: seed) }

    @Test func roundTripCopiesEverything() throws {
        let a = try model(seed: 1), b = try model(seed: 2)
        let state = a.stateDict()
        #expect(state.count == a.namedTensors().count)
        try b.load(stateDict: state)
        for (x, y) in zip(a.namedTensors(), b.namedTensors()) {
            #expect(x.name == y.name && x.tensor.array == y.tensor.array)
            #expect(x.tensor !== y.tensor)
        }
        let input = randomTensor([2, 3, 32, 32], seed: 3)
        #expect(a.forward(input, mode: .eval).array == b.forward(input, mode: .eval).array)
    }

    @Test func missingKey() throws {
        let m = try model(seed: 1)
        var state = m.stateDict()
        state["layer2.1.bn1.running_var"] = nil
        #expect(throws: StateDictError.missingKey("layer2.1.bn1.running_var")) { try m.load(stateDict: state) }
        #expect(StateDictError.missingKey("k").description == "missing key k")
        try m.load(stateDict: state, strict: false)
    }

    @Test func unexpectedKey() throws {
        let m = try model(seed: 1)
        var state = m.stateDict()
        state["layer4.0.conv1.weight"] = Tensor(shape: [1])
        #expect(throws: StateDictError.unexpectedKey("layer4.0.conv1.weight")) { try m.load(stateDict: state) }
        #expect(StateDictError.unexpectedKey("k").description == "unexpected key k")
        try m.load(stateDict: state, strict: false)
    }

    @Test func shapeMismatchThrowsEvenWhenNotStrict() throws {
        let m = try model(seed: 1)
        var state = m.stateDict()
        state["linear.weight"] = Tensor(shape: [100, 64])
        let expected = StateDictError.shapeMismatch(key: "linear.weight", checkpoint: [100, 64], model: [10, 64])
        #expect(throws: expected) { try m.load(stateDict: state) }
        #expect(throws: expected) { try m.load(stateDict: state, strict: false) }
        #expect(expected.description == "shape mismatch for linear.weight: checkpoint [100, 64] vs model [10, 64]")
    }

    @Test func failedLoadLeavesModelUntouched() throws {
        let m = try model(seed: 1)
        let before = m.namedTensors().map(\.tensor.array)
        var state = try model(seed: 2).stateDict()
        state["zzz"] = Tensor(shape: [1])
        #expect(throws: StateDictError.self) { try m.load(stateDict: state) }
        #expect(m.namedTensors().map(\.tensor.array) == before)
    }

    /// PyTorch's `num_batches_tracked` is 0-d.
    @Test func zeroDimensionalAndOneElementTensorsAreInterchangeable() throws {
        let m = try model(seed: 1)
        var state = m.stateDict()
        let engineShape = state["bn1.num_batches_tracked"]!.shape
        state["bn1.num_batches_tracked"] = Tensor(shape: engineShape.isEmpty ? [1] : [], values: [7])
        try m.load(stateDict: state)
        #expect(m.buffers().first { $0.name == "bn1.num_batches_tracked" }!.buffer.value.array == [7])
    }

    @Test func blockedCheckpointTensorsAreConverted() throws {
        let m = try model(seed: 1)
        var state = m.stateDict()
        let w = state["layer1.0.conv1.weight"]!
        state["layer1.0.conv1.weight"] = w.toLayout(.blocked(16))
        try m.load(stateDict: state)
        let loaded = m.namedTensors().first { $0.name == "layer1.0.conv1.weight" }!.tensor
        #expect(loaded.layout == .plain && loaded.array == w.array)
    }
}
