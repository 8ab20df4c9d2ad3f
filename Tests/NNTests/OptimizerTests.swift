import TestSupport
import Foundation
import Kernels
import Testing
import Tensors
@testable import NN

// SGD and Adam against PyTorch 1.13 (Golden/optim_schedule.json, written by
// scripts/make_optim_schedule_golden.py: several groups, learning rate changed every step), state
// export/import (a resumed optimizer continues bit-identically), and the parallel update path.

let optimScheduleHint = "regenerate with `/usr/bin/python3 scripts/make_optim_schedule_golden.py` (repository root)"

/// Golden/optim_schedule.json.
struct OptimScheduleGolden: Decodable {
    struct Group: Decodable {
        let lr: Double
        let weight_decay: Double
        let shapes: [[Int]]
    }
    struct Step: Decodable {
        let grads: [[Double]]
        let params: [[Double]]
    }
    struct OptimizerCase: Decodable {
        let description: String
        let groups: [Group]
        let lr_per_step: [[Double]]?
        let params0: [[Double]]
        let steps: [Step]
    }
    struct Cosine: Decodable {
        let base_lr: Double
        let t_max: Int
        let eta_min: Double
        let lrs: [Double]
    }
    struct MultiStep: Decodable {
        let base_lr: Double
        let milestones: [Int]
        let gamma: Double
        let lrs: [Double]
    }
    struct WarmupCosine: Decodable {
        let peak: Double
        let iters_per_epoch: Int
        let epochs: Int
        let warmup: Int
        let start: Double
        let samples: [[Double]]
    }
    let optimizers: [String: OptimizerCase]
    let cosine: [Cosine]
    let multistep: [MultiStep]
    let warmup_cosine: WarmupCosine

    static func load() throws -> OptimScheduleGolden {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Golden/optim_schedule.json")
        do {
            return try JSONDecoder().decode(OptimScheduleGolden.self, from: Data(contentsOf: url))
        } catch {
            throw OptimizerTestError(description: "cannot load \(url.path): \(error); \(optimScheduleHint)")
        }
    }
}

struct OptimizerTestError: Error, CustomStringConvertible {
    let description: String
}

/// Distance in float32 units in the last place (same-sign values).
private func ulps(_ a: Float, _ b: Float) -> Int {
    if a == b { return 0 }
    if a.sign != b.sign { return Int.max }
    return abs(Int(a.bitPattern) - Int(b.bitPattern))
}

private func makeParameters(_ shapes: [[Int]], _ values: [[Double]]) -> [Parameter] {
    zip(shapes, values).map { Parameter(Tensor(shape: $0, values: $1.map { Float($0) })) }
}

private func makeGroups(_ c: OptimScheduleGolden.OptimizerCase, _ params: [Parameter]) -> [ParameterGroup] {
    var next = 0
    return c.groups.enumerated().map { g, spec in
        let ps = spec.shapes.indices.map { i -> (name: String, parameter: Parameter) in
            defer { next += 1 }
            return ("g\(g).p\(i)", params[next])
        }
        return ParameterGroup(parameters: ps, lr: spec.lr, weightDecay: spec.weight_decay)
    }
}

private func makeOptimizer(_ name: String, _ groups: [ParameterGroup]) -> Optimizer {
    switch name {
    case "sgd_plain": return SGD(groups: groups)
    case "sgd_momentum_groups": return SGD(groups: groups, momentum: 0.9)
    case "sgd_nesterov_groups": return SGD(groups: groups, momentum: 0.9, nesterov: true)
    case "adam_groups": return Adam(groups: groups)
    default: preconditionFailure("unknown optimizer case \(name)")
    }
}

/// Bit-identical parameter values.
private func sameBits(_ a: [Parameter], _ b: [Parameter]) -> Bool {
    zip(a, b).allSatisfy { x, y in
        x.count == y.count && (0..<x.count).allSatisfy { x.value[$0].bitPattern == y.value[$0].bitPattern }
    }
}

@Suite("Optimizers: SGD and Adam vs PyTorch, state round trip")
struct OptimizerTests {

    /// torch fuses `a + α·b` into one FMA; these loops do not, so allow a few ulps (and a tiny absolute
    /// slack for values that pass near zero, where ulps are meaningless).
    @Test(arguments: ["sgd_plain", "sgd_momentum_groups", "sgd_nesterov_groups", "adam_groups"])
    func matchesPyTorch(_ name: String) throws {
        let golden = try OptimScheduleGolden.load()
        guard let c = golden.optimizers[name] else {
            throw OptimizerTestError(description: "no optimizer case \(name); \(optimScheduleHint)")
        }
        let shapes = c.groups.flatMap { $0.shapes }
        let params = makeParameters(shapes, c.params0)
        let optimizer = makeOptimizer(name, makeGroups(c, params))
        var worstUlps = 0
        var worstAbs: Float = 0
        for (s, step) in c.steps.enumerated() {
            if let lrs = c.lr_per_step?[s] {
                for g in lrs.indices { optimizer.groups[g].lr = lrs[g] }
            }
            optimizer.zeroGrad()
            for (p, grad) in zip(params, step.grads) {
                for i in 0..<p.count { p.grad[i] += Float(grad[i]) }
            }
            optimizer.step()
            for (k, (p, expected)) in zip(params, step.params).enumerated() {
                for i in 0..<p.count {
                    let a = p.value[i], e = Float(expected[i])
                    let u = ulps(a, e)
                    worstAbs = max(worstAbs, abs(a - e))
                    if abs(a - e) > 1e-7 { worstUlps = max(worstUlps, u) }
                    if u > 8 && abs(a - e) > 1e-7 {
                        Issue.record("\(name) step \(s + 1) param \(k)[\(i)]: got \(a), torch \(e) (\(u) ulps); \(optimScheduleHint)")
                        return
                    }
                }
            }
        }
        print("\(name): vs torch over \(c.steps.count) steps: max |Δ| \(worstAbs), max \(worstUlps) ulp where |Δ| > 1e-7")
    }

    /// Run A for 3 steps, checkpoint it through safetensors bytes, restore into a fresh optimizer B on
    /// copied parameters, then run both 3 more steps: every parameter and state bit must agree.
    @Test(arguments: ["sgd_momentum_groups", "sgd_nesterov_groups", "adam_groups", "sgd_plain"])
    func stateRoundTripResumesBitIdentically(_ name: String) throws {
        let golden = try OptimScheduleGolden.load()
        let c = try #require(golden.optimizers[name])
        let shapes = c.groups.flatMap { $0.shapes }
        let paramsA = makeParameters(shapes, c.params0)
        let a = makeOptimizer(name, makeGroups(c, paramsA))
        func feed(_ params: [Parameter], _ s: Int) {
            for (p, grad) in zip(params, c.steps[s].grads) {
                p.zeroGrad()
                for i in 0..<p.count { p.grad[i] = Float(grad[i]) }
            }
        }
        for s in 0..<3 {
            a.setLearningRate(0.01 * Double(s + 1))
            feed(paramsA, s)
            a.step()
        }
        let exported = a.exportState()
        let bytes = try SafetensorsFile(tensors: exported.tensors, metadata: exported.scalars).encoded()
        let file = try SafetensorsFile.decode(bytes)
        let restored = OptimizerState(tensors: file.tensors, scalars: file.metadata)
        #expect(restored == exported)

        let paramsB = paramsA.map { Parameter($0.value.copy()) }
        let freshGroups = makeGroups(c, paramsB).map {
            ParameterGroup(parameters: $0.parameters, lr: 123, weightDecay: 7)  // overwritten by the import
        }
        let b = makeOptimizer(name, freshGroups)
        try b.importState(restored)
        #expect(b.groups.map(\.lr) == a.groups.map(\.lr))
        #expect(b.groups.map(\.weightDecay) == a.groups.map(\.weightDecay))
        for s in 3..<5 {
            feed(paramsA, s)
            feed(paramsB, s)
            a.step()
            b.step()
        }
        #expect(sameBits(paramsA, paramsB))
        #expect(a.exportState() == b.exportState())
    }

    @Test func adamExportsPyTorchFieldNames() throws {
        let p = Parameter(Tensor(shape: [2], values: [1, 2]))
        let q = Parameter(Tensor(shape: [3], values: [1, 2, 3]))
        let adam = Adam(groups: [ParameterGroup(parameters: [("p", p), ("q", q)], lr: 1e-3)])
        #expect(adam.exportState().tensors.isEmpty)
        p.grad.fill(1)
        adam.step()
        let state = adam.exportState()
        #expect(Set(state.tensors.keys) == ["group0.param0.exp_avg", "group0.param0.exp_avg_sq",
                                            "group0.param1.exp_avg", "group0.param1.exp_avg_sq"])
        #expect(state.scalars == ["group0.lr": "0.001", "group0.weight_decay": "0.0",
                                  "group0.param0.step": "1", "group0.param1.step": "1"])
    }

    @Test func importRejectsBadStateAndChangesNothing() throws {
        let p = Parameter(Tensor(shape: [2, 2], values: [1, 2, 3, 4]))
        let sgd = SGD(groups: [ParameterGroup(parameters: [("p", p)], lr: 0.1, weightDecay: 1e-4)], momentum: 0.9)
        p.grad.fill(0.5)
        sgd.step()
        let good = sgd.exportState()

        func expectFailure(_ state: OptimizerState, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                try sgd.importState(state)
                Issue.record("import accepted a bad state (\(fragment))", sourceLocation: sourceLocation)
            } catch {
                #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation)
            }
            #expect(sgd.exportState() == good, sourceLocation: sourceLocation)
        }
        var s = good
        s.tensors["group0.param1.momentum_buffer"] = Tensor(shape: [1])
        expectFailure(s, "unexpected tensor group0.param1.momentum_buffer")
        s = good
        s.tensors["group0.param0.momentum_buffer"] = Tensor(shape: [4])
        expectFailure(s, "has shape [4], parameter has [2, 2]")
        s = good
        s.scalars["group0.lr"] = nil
        expectFailure(s, "lacks group0.lr")
        s = good
        s.scalars["group0.lr"] = "fast"
        expectFailure(s, "group0.lr = 'fast' is not a finite number")
        s = good
        s.scalars["group1.lr"] = "0.1"
        expectFailure(s, "unexpected scalar group1.lr")

        let adam = Adam(groups: [ParameterGroup(parameters: [("p", p)], lr: 0.1)])
        var a = adam.exportState()
        a.scalars["group0.param0.step"] = "-2"
        #expect(throws: OptimizerStateError.self) { try adam.importState(a) }
        a.scalars["group0.param0.step"] = "2"
        #expect(throws: OptimizerStateError.self) { try adam.importState(a) }  // buffers missing
    }

    /// The chunked kernels against their naive twins, on a buffer spanning several chunks, in every
    /// SGD mode and for Adam with and without weight decay: identical bits.
    @Test func kernelsMatchNaiveTwins() {
        let n = 3 * optimizerKernelChunk + 123
        let p0 = randomTensor([n], seed: 1), g = randomTensor([n], seed: 2), b0 = randomTensor([n], seed: 3)
        let v0 = Tensor(shape: [n], values: randomTensor([n], seed: 4).array.map { $0 * $0 })
        func same(_ a: Tensor, _ b: Tensor) -> Bool { zip(a.array, b.array).allSatisfy { $0.bitPattern == $1.bitPattern } }
        let modes: [SGDMomentumMode] = [.none, .initialize, .update]
        for mode in modes {
            for nesterov in [false, true] where !(nesterov && mode == .none) {
                for wd: Float in [0, 5e-4] {
                    let (pa, pb, ba, bb) = (p0.copy(), p0.copy(), b0.copy(), b0.copy())
                    withUnsafeMutablePointers(pa, ba, g) { pa, ba, g in
                        sgdStep(p: pa, buf: ba, grad: g, count: n, lr: 0.05, weightDecay: wd,
                                momentum: 0.9, nesterov: nesterov, mode: mode)
                    }
                    withUnsafeMutablePointers(pb, bb, g) { pb, bb, g in
                        sgdStepNaive(p: pb, buf: bb, grad: g, count: n, lr: 0.05, weightDecay: wd,
                                     momentum: 0.9, nesterov: nesterov, mode: mode)
                    }
                    #expect(same(pa, pb) && same(ba, bb), "SGD \(mode) nesterov \(nesterov) wd \(wd)")
                }
            }
        }
        for wd: Float in [0, 5e-4] {
            let (pa, pb, ma, mb, va, vb) = (p0.copy(), p0.copy(), b0.copy(), b0.copy(), v0.copy(), v0.copy())
            withUnsafeMutablePointers(pa, ma, va, g) { pa, ma, va, g in
                adamStep(p: pa, m: ma, v: va, grad: g, count: n, negStepSize: -0.003, bias2Sqrt: 0.05,
                         eps: 1e-8, beta1: 0.9, oneMinusBeta1: 0.1, beta2: 0.999, oneMinusBeta2: 0.001, weightDecay: wd)
            }
            withUnsafeMutablePointers(pb, mb, vb, g) { pb, mb, vb, g in
                adamStepNaive(p: pb, m: mb, v: vb, grad: g, count: n, negStepSize: -0.003, bias2Sqrt: 0.05,
                              eps: 1e-8, beta1: 0.9, oneMinusBeta1: 0.1, beta2: 0.999, oneMinusBeta2: 0.001, weightDecay: wd)
            }
            #expect(same(pa, pb) && same(ma, mb) && same(va, vb), "Adam wd \(wd)")
        }
    }
}

/// SGD (Nesterov) and Adam give bit-identical parameters with 1 and 2 threads at ResNet-20's size (0.27 M;
/// several chunks). Timings of the same updates: `sqakd bench optimizer`.
@Suite(.serialized) struct OptimizerThreadTests {
    @Test func stepsAreBitIdenticalAcrossThreadCounts() {
        let previous = Threads.count
        defer { Threads.set(previous) }
        let n = 270_000
        let grad = randomTensor([n], seed: 5)
        for kind in ["SGD nesterov", "Adam"] {
            var results: [[UInt32]] = []
            for threads in [1, 2] {
                Threads.set(threads)
                let p = Parameter(randomTensor([n], seed: 4))
                p.grad.copyElements(from: grad)
                let group = ParameterGroup(parameters: [("p", p)], lr: 0.01, weightDecay: 1e-4)
                let opt: Optimizer = kind == "Adam" ? Adam(groups: [group]) : SGD(groups: [group], momentum: 0.9, nesterov: true)
                for _ in 0..<3 { opt.step() }
                results.append(p.value.array.map(\.bitPattern))
            }
            #expect(results[0] == results[1], "\(kind) differs across thread counts")
        }
    }
}
