import CDNNL
import Foundation

// 2-D convolution on oneDNN (fast path). The naive twin is in ConvolutionReference.swift.
//
// Legend: N batch, C input channels, K output channels, H×W input, P×Q output, R×S kernel, G groups.
//   y[n, k, p, q] = b[k] + Σ_{c ∈ group(k), r, s} x[n, c, p·sh − ph + r, q·sw − pw + s] · w[k, c − c₀(k), r, s]
// Activations are float32 in plain NCHW (block 1) or oneDNN's nChw{b}c (block 8 or 16): element
// (n, c, h, w) at ((n·C/b + c/b)·H·W + h·W + w)·b + c%b. Weights are always plain PyTorch OIHW
// ([K, C/G, R, S]); they are reordered per call into the format the primitive wants (they are small).
//
// Each (kind, geometry, bias, layouts) gets one cached plan: a primitive, its memory objects and the
// reorders around it, so a repeated call only sets data handles and executes. Calls are serialised by a
// lock (one engine, one stream, one shared scratchpad); oneDNN parallelises inside with OpenMP using
// `Threads.count` threads. oneDNN's CPU convolutions are deterministic for a fixed thread count.
//
// Measured with oneDNN 2.6 on the AVX-512 dev machine: every ResNet-20 convolution runs
// jit:avx512_core with nChw16c activations (the stem reads the plain image batch and writes nChw16c),
// the same kernels PyTorch 1.13 runs, minus PyTorch's NCHW↔nChw16c reorders. Pitfalls: K not divisible
// by 16 (MobileNet-V2's 24 channels) makes oneDNN want channel-padded nChw16c, which Tensor cannot hold,
// so those layers write nChw8c through a reorder; a DNNL_MAX_CPU_ISA=AVX2 cap switches to jit:avx2 with
// nChw8c and is 2.5–3.5× slower; OpenMP's spin-waiting workers compete with the Swift kernels' threads
// (OMP_WAIT_POLICY=passive, read when libgomp loads, helps on a busy machine).

/// Shape and hyper-parameters of a 2-D convolution. Padding is symmetric (PyTorch's `padding=`).
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var inputChannels: Int
    public var inputHeight: Int
    public var inputWidth: Int
    public var outputChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var paddingHeight: Int
    public var paddingWidth: Int
    public var groups: Int

    public init(batch: Int, inputChannels: Int, inputHeight: Int, inputWidth: Int, outputChannels: Int,
                kernelHeight: Int, kernelWidth: Int, strideHeight: Int = 1, strideWidth: Int = 1,
                paddingHeight: Int = 0, paddingWidth: Int = 0, groups: Int = 1) {
        self.batch = batch
        self.inputChannels = inputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.outputChannels = outputChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
        self.groups = groups
    }

    /// Square kernel, stride and padding.
    public init(batch: Int, inputChannels: Int, inputHeight: Int, inputWidth: Int, outputChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
        self.init(batch: batch, inputChannels: inputChannels, inputHeight: inputHeight, inputWidth: inputWidth,
                  outputChannels: outputChannels, kernelHeight: kernelSize, kernelWidth: kernelSize,
                  strideHeight: stride, strideWidth: stride, paddingHeight: padding, paddingWidth: padding,
                  groups: groups)
    }

    /// P = ⌊(H + 2·ph − R) / sh⌋ + 1.
    public var outputHeight: Int { (inputHeight + 2 * paddingHeight - kernelHeight) / strideHeight + 1 }
    /// Q = ⌊(W + 2·pw − S) / sw⌋ + 1.
    public var outputWidth: Int { (inputWidth + 2 * paddingWidth - kernelWidth) / strideWidth + 1 }

    public var inputShape: [Int] { [batch, inputChannels, inputHeight, inputWidth] }
    public var outputShape: [Int] { [batch, outputChannels, outputHeight, outputWidth] }
    /// PyTorch weight shape [K, C/G, R, S].
    public var weightShape: [Int] { [outputChannels, inputChannels / groups, kernelHeight, kernelWidth] }
    public var weightCount: Int { weightShape.reduce(1, *) }

    /// Multiply-accumulates of one forward pass over the whole batch.
    public var macs: Int {
        batch * outputChannels * outputHeight * outputWidth * (inputChannels / groups) * kernelHeight * kernelWidth
    }

    /// Why the geometry is invalid, or nil.
    public var problem: String? {
        let all = [batch, inputChannels, inputHeight, inputWidth, outputChannels, kernelHeight, kernelWidth,
                   strideHeight, strideWidth, groups]
        if all.contains(where: { $0 < 1 }) || paddingHeight < 0 || paddingWidth < 0 {
            return "non-positive size in \(self)"
        }
        if inputChannels % groups != 0 || outputChannels % groups != 0 {
            return "channels not divisible by groups in \(self)"
        }
        if outputHeight < 1 || outputWidth < 1 { return "kernel larger than padded input in \(self)" }
        return nil
    }

    public var description: String {
        "conv(N\(batch) C\(inputChannels) \(inputHeight)x\(inputWidth) -> K\(outputChannels) " +
            "kernel \(kernelHeight)x\(kernelWidth) stride \(strideHeight)x\(strideWidth) " +
            "pad \(paddingHeight)x\(paddingWidth) groups \(groups))"
    }
}

/// The channel block (1 = plain NCHW, 8, 16) in which `convForward` writes its output fastest: the
/// layout oneDNN's chosen implementation produces natively, or, when that is not one we can represent,
/// nChw16c / nChw8c / plain, the first that divides K.
public func convOutputBlock(_ g: ConvGeometry, bias: Bool) -> Int {
    ConvEngine.shared.locked { $0.outputBlock(g, bias: bias) }
}

/// Forward convolution: y = conv(x, w) + b.
/// - y: [N, K, P, Q] in block `yBlock` (overwritten).
/// - x: [N, C, H, W] in block `xBlock`; weight: [K, C/G, R, S] plain; bias: [K] or nil.
public func convForward(_ y: UnsafeMutablePointer<Float>, yBlock: Int,
                        _ x: UnsafePointer<Float>, xBlock: Int,
                        _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        _ g: ConvGeometry) {
    ConvEngine.shared.locked { e in
        let plan = e.plan(.forward, g, bias: bias != nil, xBlock, yBlock)
        var ptrs: [UnsafeMutableRawPointer] = [UnsafeMutableRawPointer(mutating: x), UnsafeMutableRawPointer(mutating: weight)]
        if let bias { ptrs.append(UnsafeMutableRawPointer(mutating: bias)) }
        ptrs.append(UnsafeMutableRawPointer(y))
        e.execute(plan, ptrs)
    }
}

/// Backward data: dx = conv_transposed(dy, w), i.e. dx[n, c, h, w] = Σ dy[n, k, p, q] · w[k, c, r, s]
/// over the (k, p, q, r, s) that touched x[n, c, h, w].
/// - dx: [N, C, H, W] in block `dxBlock` (overwritten, not accumulated).
/// - dy: [N, K, P, Q] in block `dyBlock`; weight: [K, C/G, R, S] plain.
public func convBackwardData(_ dx: UnsafeMutablePointer<Float>, dxBlock: Int,
                             _ dy: UnsafePointer<Float>, dyBlock: Int,
                             _ weight: UnsafePointer<Float>,
                             _ g: ConvGeometry) {
    ConvEngine.shared.locked { e in
        let plan = e.plan(.backwardData, g, bias: false, dxBlock, dyBlock)
        e.execute(plan, [UnsafeMutableRawPointer(mutating: dy), UnsafeMutableRawPointer(mutating: weight),
                         UnsafeMutableRawPointer(dx)])
    }
}

/// Backward weights: dweight[k, c, r, s] += Σ_{n,p,q} dy[n, k, p, q] · x[n, c₀(k) + c, p·sh − ph + r, q·sw − pw + s];
/// dbias[k] += Σ_{n,p,q} dy[n, k, p, q].
/// - dweight: [K, C/G, R, S] plain (accumulated); dbias: [K] (accumulated) or nil.
/// - x: [N, C, H, W] in block `xBlock`; dy: [N, K, P, Q] in block `dyBlock`.
public func convBackwardWeights(_ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>?,
                                _ x: UnsafePointer<Float>, xBlock: Int,
                                _ dy: UnsafePointer<Float>, dyBlock: Int,
                                _ g: ConvGeometry) {
    let useDirect = ConvEngine.shared.locked { e in
        let plan = e.plan(.backwardWeights, g, bias: dbias != nil, xBlock, dyBlock)
        // oneDNN's `ref:any` (no JIT kernel for this shape) is orders of magnitude slower than im2col + sgemm.
        if !plan.info.isJIT { return true }
        var ptrs: [UnsafeMutableRawPointer] = [UnsafeMutableRawPointer(mutating: x), UnsafeMutableRawPointer(mutating: dy),
                                               UnsafeMutableRawPointer(dweight)]
        if let dbias { ptrs.append(UnsafeMutableRawPointer(dbias)) }
        e.execute(plan, ptrs)
        return false
    }
    if useDirect { convBackwardWeightsDirect(dweight, dbias, x, xBlock: xBlock, dy, dyBlock: dyBlock, g) }
}

/// What oneDNN runs for one convolution call: the implementation name (e.g. "jit:avx512_core") and the
/// formats of the primitive's arguments, plus the reorders the plan performs around it.
public struct ConvPlanInfo: Sendable, CustomStringConvertible {
    public var kind: String
    public var implementation: String
    public var formats: [String]
    public var reorders: [String]

    /// A JIT-compiled kernel ("jit:…", "jit_1x1:…", "brg…"), not "gemm:" or "ref:".
    public var isJIT: Bool { Self.isJIT(implementation) }

    static func isJIT(_ implementation: String) -> Bool {
        implementation.hasPrefix("jit") || implementation.hasPrefix("brg")
    }

    public var description: String {
        "\(kind): \(implementation) [\(formats.joined(separator: ", "))]" +
            (reorders.isEmpty ? "" : " reorders: \(reorders.joined(separator: ", "))")
    }
}

/// The plans behind forward (x in `xBlock`, y in `convOutputBlock`), backward-data and backward-weights
/// (dy in the forward output's block, dx in `xBlock`).
public func convPlanInfo(_ g: ConvGeometry, bias: Bool, xBlock: Int) -> [ConvPlanInfo] {
    ConvEngine.shared.locked { e in
        let yBlock = e.outputBlock(g, bias: bias)
        return [e.plan(.forward, g, bias: bias, xBlock, yBlock).info,
                e.plan(.backwardData, g, bias: false, xBlock, yBlock).info,
                e.plan(.backwardWeights, g, bias: bias, xBlock, yBlock).info]
    }
}

/// oneDNN's version string, for run records.
public func dnnlVersion() -> String {
    guard let v = dnnl_version()?.pointee else { return "unknown" }
    return "\(v.major).\(v.minor).\(v.patch)"
}

// MARK: - Engine, plans and their cache

private func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success { fatalError("oneDNN \(what()) failed with status \(status.rawValue)") }
}

private enum ConvKind: UInt8 { case forward, backwardData, backwardWeights }

private struct PlanKey: Hashable {
    var kind: ConvKind
    var geometry: ConvGeometry
    var bias: Bool
    /// Forward: (x, y); backward data: (dx, dy); backward weights: (x, dy).
    var blockA: Int
    var blockB: Int
}

/// One argument of the primitive: either bound directly to the caller's pointer or staged through a
/// private buffer with a reorder (before execution for inputs, after it for outputs).
private struct Binding {
    var arg: Int32
    var primitiveMemory: dnnl_memory_t
    var staging: Staging?

    struct Staging {
        var userMemory: dnnl_memory_t
        var reorder: dnnl_primitive_t
        var isOutput: Bool
    }
}

private final class Plan {
    let primitive: dnnl_primitive_t
    /// Bindings in the order of the pointers the caller passes.
    let bindings: [Binding]
    let scratchpadMemory: dnnl_memory_t
    let scratchpadBytes: Int
    let info: ConvPlanInfo

    init(primitive: dnnl_primitive_t, bindings: [Binding], scratchpadMemory: dnnl_memory_t,
         scratchpadBytes: Int, info: ConvPlanInfo) {
        self.primitive = primitive
        self.bindings = bindings
        self.scratchpadMemory = scratchpadMemory
        self.scratchpadBytes = scratchpadBytes
        self.info = info
    }
}

private final class ConvEngine {
    static let shared = ConvEngine()

    private let lock = NSLock()
    private let engine: dnnl_engine_t
    private let stream: dnnl_stream_t
    private var plans: [PlanKey: Plan] = [:]
    /// All-`any` forward descriptors per (geometry, bias): the hint for backward primitives and the
    /// source of `outputBlock`.
    private var hints: [PlanKey: dnnl_primitive_desc_t] = [:]
    private var outputBlocks: [PlanKey: Int] = [:]
    /// One scratchpad shared by all plans (calls are serialised), grown on demand; plus the staging
    /// buffers of plans, which are owned for the process lifetime like the plans themselves.
    private var scratchpad: UnsafeMutableRawPointer?
    private var scratchpadBytes = 0

    private init() {
        var e: dnnl_engine_t?
        check(dnnl_engine_create(&e, dnnl_cpu, 0), "engine_create")
        var s: dnnl_stream_t?
        check(dnnl_stream_create(&s, e, dnnl_stream_default_flags.rawValue), "stream_create")
        engine = e!
        stream = s!
    }

    func locked<T>(_ body: (ConvEngine) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(self)
    }

    // MARK: Memory descriptors

    private static func tag(block: Int) -> dnnl_format_tag_t {
        switch block {
        case 1: return dnnl_nchw
        case 8: return dnnl_nChw8c
        case 16: return dnnl_nChw16c
        default: preconditionFailure("unsupported activation block \(block) (use 1, 8 or 16)")
        }
    }

    private static func desc(_ dims: [Int], _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var d = dnnl_memory_desc_t()
        let dims64 = dims.map { Int64($0) }
        check(dnnl_memory_desc_init_by_tag(&d, Int32(dims.count), dims64, dnnl_f32, tag), "memory_desc_init \(dims)")
        return d
    }

    private static func activation(_ shape: [Int], block: Int?) -> dnnl_memory_desc_t {
        desc(shape, block.map(tag(block:)) ?? dnnl_format_tag_any)
    }

    /// Plain PyTorch weights: oihw, or goihw [G, K/G, C/G, R, S] for grouped convolutions (same bytes).
    private static func userWeights(_ g: ConvGeometry) -> dnnl_memory_desc_t {
        if g.groups == 1 { return desc(g.weightShape, dnnl_oihw) }
        return desc([g.groups, g.outputChannels / g.groups, g.inputChannels / g.groups, g.kernelHeight, g.kernelWidth],
                    dnnl_goihw)
    }

    private static func anyWeights(_ g: ConvGeometry) -> dnnl_memory_desc_t {
        if g.groups == 1 { return desc(g.weightShape, dnnl_format_tag_any) }
        return desc([g.groups, g.outputChannels / g.groups, g.inputChannels / g.groups, g.kernelHeight, g.kernelWidth],
                     dnnl_format_tag_any)
    }

    private static func biasDesc(_ g: ConvGeometry) -> dnnl_memory_desc_t { desc([g.outputChannels], dnnl_a) }

    /// The block of `d` if it is plain NCHW or nChw{8,16}c without channel padding, else nil.
    private static func block(of d: UnsafePointer<dnnl_memory_desc_t>, shape: [Int]) -> Int? {
        for b in [1, 8, 16] where shape[1] % b == 0 {
            var candidate = desc(shape, tag(block: b))
            if dnnl_memory_desc_equal(d, &candidate) != 0 { return b }
        }
        return nil
    }

    private static func formatName(_ d: UnsafePointer<dnnl_memory_desc_t>, activationShape: [Int]?) -> String {
        if let s = activationShape, let b = block(of: d, shape: s) { return b == 1 ? "nchw" : "nChw\(b)c" }
        let md = d.pointee
        if md.format_kind != dnnl_blocked { return "format_kind \(md.format_kind.rawValue)" }
        let nd = Int(md.ndims)
        var strides = md.format_desc.blocking.strides
        let outer = withUnsafeBytes(of: &strides) { raw -> String in
            let st = raw.bindMemory(to: Int64.self)
            let letters = Array("abcdefghijkl")
            return (0..<nd).sorted { st[$0] > st[$1] }.map { String(letters[$0]) }.joined()
        }
        var blks = md.format_desc.blocking.inner_blks
        var idxs = md.format_desc.blocking.inner_idxs
        let nblks = Int(md.format_desc.blocking.inner_nblks)
        let inner = withUnsafeBytes(of: &blks) { b in
            withUnsafeBytes(of: &idxs) { i in
                let bb = b.bindMemory(to: Int64.self), ii = i.bindMemory(to: Int64.self)
                let letters = Array("abcdefghijkl")
                return (0..<nblks).map { "\(bb[$0])\(letters[Int(ii[$0])])" }.joined()
            }
        }
        return outer + inner
    }

    private static func implementation(_ pd: dnnl_primitive_desc_t) -> String {
        var name: UnsafePointer<CChar>?
        check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name), "query impl_info_str")
        return name.map { String(cString: $0) } ?? "unknown"
    }

    // MARK: Primitive descriptors

    /// A convolution primitive descriptor; activations use `blocks` (nil = `any`), weights `any`.
    private func makeDesc(_ kind: ConvKind, _ g: ConvGeometry, bias: Bool, _ blockA: Int?, _ blockB: Int?,
                          attr: dnnl_primitive_attr_t?) -> dnnl_primitive_desc_t? {
        let strides: [Int64] = [Int64(g.strideHeight), Int64(g.strideWidth)]
        let pad: [Int64] = [Int64(g.paddingHeight), Int64(g.paddingWidth)]
        var w = Self.anyWeights(g)
        var b = Self.biasDesc(g)
        var cd = dnnl_convolution_desc_t()
        var hint: dnnl_primitive_desc_t?
        switch kind {
        case .forward:
            var src = Self.activation(g.inputShape, block: blockA)
            var dst = Self.activation(g.outputShape, block: blockB)
            let status = withUnsafePointer(to: &b) { bp in
                dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src, &w,
                                                   bias ? bp : nil, &dst, strides, pad, pad)
            }
            check(status, "convolution_forward_desc_init \(g)")
        case .backwardData:
            var dsrc = Self.activation(g.inputShape, block: blockA)
            var ddst = Self.activation(g.outputShape, block: blockB)
            check(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &dsrc, &w, &ddst,
                                                           strides, pad, pad),
                  "convolution_backward_data_desc_init \(g)")
            hint = hintDesc(g, bias: false)
        case .backwardWeights:
            var src = Self.activation(g.inputShape, block: blockA)
            var ddst = Self.activation(g.outputShape, block: blockB)
            let status = withUnsafePointer(to: &b) { bp in
                dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src, &w,
                                                            bias ? bp : nil, &ddst, strides, pad, pad)
            }
            check(status, "convolution_backward_weights_desc_init \(g)")
            hint = hintDesc(g, bias: bias)
        }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &cd, attr, engine, hint) == dnnl_success else { return nil }
        return pd
    }

    private func hintDesc(_ g: ConvGeometry, bias: Bool) -> dnnl_primitive_desc_t {
        let key = PlanKey(kind: .forward, geometry: g, bias: bias, blockA: 0, blockB: 0)
        if let pd = hints[key] { return pd }
        guard let pd = makeDesc(.forward, g, bias: bias, nil, nil, attr: nil) else {
            fatalError("oneDNN has no forward convolution for \(g)")
        }
        hints[key] = pd
        return pd
    }

    func outputBlock(_ g: ConvGeometry, bias: Bool) -> Int {
        precondition(g.problem == nil, g.problem ?? "")
        let key = PlanKey(kind: .forward, geometry: g, bias: bias, blockA: 0, blockB: 0)
        if let b = outputBlocks[key] { return b }
        let pd = hintDesc(g, bias: bias)
        let chosen = Self.block(of: dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), shape: g.outputShape)
        let b = chosen ?? [16, 8, 1].first { g.outputChannels % $0 == 0 }!
        outputBlocks[key] = b
        return b
    }

    // MARK: Plans

    func plan(_ kind: ConvKind, _ g: ConvGeometry, bias: Bool, _ blockA: Int, _ blockB: Int) -> Plan {
        let key = PlanKey(kind: kind, geometry: g, bias: bias, blockA: blockA, blockB: blockB)
        if let p = plans[key] { return p }
        precondition(g.problem == nil, g.problem ?? "")
        let p = makePlan(kind, g, bias: bias, blockA, blockB)
        plans[key] = p
        return p
    }

    private func makePlan(_ kind: ConvKind, _ g: ConvGeometry, bias: Bool, _ blockA: Int, _ blockB: Int) -> Plan {
        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode")

        // Prefer the caller's activation layouts (no reorders); fall back to `any` plus reorders when
        // oneDNN has no JIT implementation for them.
        var pd = makeDesc(kind, g, bias: bias, blockA, blockB, attr: attr)
        if pd == nil || !ConvPlanInfo.isJIT(Self.implementation(pd!)) {
            if let fallback = makeDesc(kind, g, bias: bias, nil, nil, attr: attr) {
                if pd == nil || ConvPlanInfo.isJIT(Self.implementation(fallback)) {
                    if let old = pd { dnnl_primitive_desc_destroy(old) }
                    pd = fallback
                } else {
                    dnnl_primitive_desc_destroy(fallback)
                }
            }
        }
        guard let pd else { fatalError("oneDNN has no \(kind) convolution for \(g)") }
        defer { dnnl_primitive_desc_destroy(pd) }

        var primitive: dnnl_primitive_t?
        check(dnnl_primitive_create(&primitive, pd), "primitive_create \(kind) \(g)")

        // (exec arg, query, index, user descriptor, activation shape, is output, accumulates)
        typealias Arg = (Int32, dnnl_query_t, Int32, dnnl_memory_desc_t, [Int]?, Bool, Bool)
        var args: [Arg] = []
        let inShape = g.inputShape, outShape = g.outputShape
        switch kind {
        case .forward:
            args.append((DNNL_ARG_SRC, dnnl_query_src_md, 0, Self.desc(inShape, Self.tag(block: blockA)), inShape, false, false))
            args.append((DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, Self.userWeights(g), nil, false, false))
            if bias { args.append((DNNL_ARG_BIAS, dnnl_query_weights_md, 1, Self.biasDesc(g), nil, false, false)) }
            args.append((DNNL_ARG_DST, dnnl_query_dst_md, 0, Self.desc(outShape, Self.tag(block: blockB)), outShape, true, false))
        case .backwardData:
            args.append((DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, Self.desc(outShape, Self.tag(block: blockB)), outShape, false, false))
            args.append((DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, Self.userWeights(g), nil, false, false))
            args.append((DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, 0, Self.desc(inShape, Self.tag(block: blockA)), inShape, true, false))
        case .backwardWeights:
            args.append((DNNL_ARG_SRC, dnnl_query_src_md, 0, Self.desc(inShape, Self.tag(block: blockA)), inShape, false, false))
            args.append((DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, Self.desc(outShape, Self.tag(block: blockB)), outShape, false, false))
            args.append((DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, 0, Self.userWeights(g), nil, true, true))
            if bias { args.append((DNNL_ARG_DIFF_BIAS, dnnl_query_diff_weights_md, 1, Self.biasDesc(g), nil, true, true)) }
        }

        var bindings: [Binding] = []
        var formats: [String] = []
        var reorders: [String] = []
        for (arg, query, index, userDesc, shape, isOutput, accumulates) in args {
            let primDesc = dnnl_primitive_desc_query_md(pd, query, index)!
            var user = userDesc
            formats.append(Self.formatName(primDesc, activationShape: shape))
            let primMem = memory(primDesc, handle: nil)
            let direct = !accumulates && dnnl_memory_desc_equal(primDesc, &user) != 0
            if direct {
                bindings.append(Binding(arg: arg, primitiveMemory: primMem, staging: nil))
                continue
            }
            // Staged: the primitive's side lives in a buffer owned by the plan.
            let bytes = dnnl_memory_desc_get_size(primDesc)
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, 64, max(64, bytes)) == 0, let raw else { fatalError("out of memory staging \(g)") }
            check(dnnl_memory_set_data_handle(primMem, raw), "set_data_handle")
            let userMem = memory(&user, handle: nil)
            let reorder = withUnsafePointer(to: &user) { up in
                makeReorder(from: isOutput ? primDesc : up, to: isOutput ? up : primDesc, accumulate: accumulates)
            }
            let name = Self.formatName(&user, activationShape: shape)
            reorders.append(isOutput ? "\(formats.last!)->\(name)\(accumulates ? " (+=)" : "")" : "\(name)->\(formats.last!)")
            bindings.append(Binding(arg: arg, primitiveMemory: primMem,
                                    staging: .init(userMemory: userMem, reorder: reorder, isOutput: isOutput)))
        }

        let spDesc = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)!
        let spBytes = dnnl_memory_desc_get_size(spDesc)
        let spMem = memory(spDesc, handle: nil)
        let kindName = ["forward", "backward-data", "backward-weights"][Int(kind.rawValue)]
        let info = ConvPlanInfo(kind: kindName, implementation: Self.implementation(pd), formats: formats, reorders: reorders)
        return Plan(primitive: primitive!, bindings: bindings, scratchpadMemory: spMem, scratchpadBytes: spBytes, info: info)
    }

    private func memory(_ d: UnsafePointer<dnnl_memory_desc_t>, handle: UnsafeMutableRawPointer?) -> dnnl_memory_t {
        var m: dnnl_memory_t?
        check(dnnl_memory_create(&m, d, engine, handle), "memory_create")
        return m!
    }

    private func makeReorder(from src: UnsafePointer<dnnl_memory_desc_t>, to dst: UnsafePointer<dnnl_memory_desc_t>,
                             accumulate: Bool) -> dnnl_primitive_t {
        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        if accumulate {
            // dst = src + 1·dst: the gradient accumulates into the caller's buffer.
            var ops: dnnl_post_ops_t?
            check(dnnl_post_ops_create(&ops), "post_ops_create")
            defer { dnnl_post_ops_destroy(ops) }
            check(dnnl_post_ops_append_sum(ops, 1), "post_ops_append_sum")
            check(dnnl_primitive_attr_set_post_ops(attr, ops), "set_post_ops")
        }
        var pd: dnnl_primitive_desc_t?
        check(dnnl_reorder_primitive_desc_create(&pd, src, engine, dst, engine, attr), "reorder_primitive_desc_create")
        defer { dnnl_primitive_desc_destroy(pd) }
        var r: dnnl_primitive_t?
        check(dnnl_primitive_create(&r, pd), "reorder primitive_create")
        return r!
    }

    // MARK: Execution

    private func run(_ primitive: dnnl_primitive_t, _ args: [dnnl_exec_arg_t]) {
        check(dnnl_primitive_execute(primitive, stream, Int32(args.count), args), "primitive_execute")
    }

    /// Executes `plan` with the caller's buffers, in the order of `plan.bindings`.
    func execute(_ plan: Plan, _ pointers: [UnsafeMutableRawPointer]) {
        precondition(pointers.count == plan.bindings.count, "\(pointers.count) buffers for \(plan.bindings.count) arguments")
        // oneDNN's OpenMP regions follow the engine's thread count whichever thread calls.
        omp_set_num_threads(Int32(Threads.count))
        if plan.scratchpadBytes > scratchpadBytes {
            free(scratchpad)
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, 64, plan.scratchpadBytes) == 0 else { fatalError("out of memory for scratchpad") }
            scratchpad = raw
            scratchpadBytes = plan.scratchpadBytes
        }
        check(dnnl_memory_set_data_handle(plan.scratchpadMemory, scratchpad), "set_data_handle scratchpad")

        var args: [dnnl_exec_arg_t] = [dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: plan.scratchpadMemory)]
        for (b, p) in zip(plan.bindings, pointers) {
            if let s = b.staging {
                check(dnnl_memory_set_data_handle(s.userMemory, p), "set_data_handle")
                if !s.isOutput {
                    run(s.reorder, [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: s.userMemory),
                                    dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: b.primitiveMemory)])
                }
            } else {
                check(dnnl_memory_set_data_handle(b.primitiveMemory, p), "set_data_handle")
            }
            args.append(dnnl_exec_arg_t(arg: b.arg, memory: b.primitiveMemory))
        }
        run(plan.primitive, args)
        for b in plan.bindings {
            if let s = b.staging, s.isOutput {
                run(s.reorder, [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: b.primitiveMemory),
                                dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: s.userMemory)])
            }
        }
        check(dnnl_stream_wait(stream), "stream_wait")
    }
}
