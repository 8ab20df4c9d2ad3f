import Foundation
import Kernels

/// Memory layout of a tensor's elements.
/// - `plain`: row-major in `shape` order (NCHW for 4-D).
/// - `blocked(b)`: oneDNN's nChw{b}c for 4-D tensors with C divisible by b: element (n, c, h, w) lives at
///   `((n·C/b + c/b)·H·W + h·W + w)·b + c%b`. Per-channel kernels see it as [N, C/b, H·W, b]; plain NCHW
///   is the special case b = 1.
public enum Layout: Equatable, Hashable, Sendable, CustomStringConvertible {
    case plain
    case blocked(Int)

    /// Channel block: 1 for plain.
    public var block: Int {
        switch self {
        case .plain: return 1
        case .blocked(let b): return b
        }
    }

    public var description: String {
        switch self {
        case .plain: return "plain"
        case .blocked(let b): return "nChw\(b)c"
        }
    }
}

/// A dense float32 buffer with a logical shape (NCHW for images, [N, F] for features) and a layout.
/// Reference semantics: layers hand tensors to each other without copying; `copy()` duplicates.
/// Storage is 64-byte aligned for the SIMD kernels.
///
/// The storage is reachable only inside `withUnsafe…` closures (and the multi-tensor
/// `withUnsafeMutablePointers` helpers), which keep the tensor alive for the call: a pointer must not
/// escape its closure. Element access outside kernels goes through `subscript`, `array`, `plainArray`
/// and `init(shape:values:)`.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let layout: Layout
    public let count: Int
    private let storage: UnsafeMutablePointer<Float>

    /// A zero-filled tensor.
    public init(shape: [Int], layout: Layout = .plain, zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        if case .blocked(let b) = layout {
            precondition(shape.count == 4 && shape[1] % b == 0,
                         "blocked layout nChw\(b)c needs a 4-D shape with C divisible by \(b), got \(shape)")
        }
        self.shape = shape
        self.layout = layout
        self.count = shape.reduce(1, *)
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = max(64, (count * MemoryLayout<Float>.stride + 63) / 64 * 64)
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(shape)") }
        self.storage = raw.bindMemory(to: Float.self, capacity: max(1, count))
        if zeroed { storage.initialize(repeating: 0, count: count) }
    }

    /// A plain tensor holding `values` (in row-major order of `shape`).
    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape, layout: .plain, zeroed: false)
        values.withUnsafeBufferPointer { storage.update(from: $0.baseAddress!, count: count) }
    }

    /// A tensor of the same shape and layout, zero-filled.
    public static func zeros(like t: Tensor) -> Tensor { Tensor(shape: t.shape, layout: t.layout) }

    deinit { free(storage) }

    /// Calls `body` with the first of `count` elements (storage order); the tensor stays alive for the call.
    /// The pointer must not escape `body`.
    public func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try body(storage)
    }

    /// Calls `body` with the `count` elements in storage order, read-only.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage, count: count))
    }

    /// Calls `body` with the `count` elements in storage order, writable.
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: storage, count: count))
    }

    /// Element `i` in storage order (bounds-checked; not for hot loops: take a pointer once instead).
    public subscript(i: Int) -> Float {
        get {
            precondition(i >= 0 && i < count, "index \(i) outside 0..<\(count) of \(shape)")
            return storage[i]
        }
        set {
            precondition(i >= 0 && i < count, "index \(i) outside 0..<\(count) of \(shape)")
            storage[i] = newValue
        }
    }

    /// The elements in storage order.
    public var array: [Float] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    /// The elements in plain row-major order, whatever the layout.
    public var plainArray: [Float] { toLayout(.plain).array }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape, layout: layout, zeroed: false)
        t.storage.update(from: storage, count: count)
        return t
    }

    /// Same storage order, new logical shape (plain tensors only).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(layout == .plain && newShape.reduce(1, *) == count, "cannot reshape \(shape) \(layout) to \(newShape)")
        let t = Tensor(shape: newShape, layout: .plain, zeroed: false)
        t.storage.update(from: storage, count: count)
        return t
    }

    public func fill(_ v: Float) { storage.update(repeating: v, count: count) }

    /// Copies `source`'s elements (same count; storage order) into this tensor.
    public func copyElements(from source: Tensor) {
        precondition(source.count == count, "copying \(source.count) elements (\(source.shape)) into \(count) (\(shape))")
        storage.update(from: source.storage, count: count)
    }

    /// Converts between plain NCHW and nChw{b}c. Returns `self` when the layout already matches.
    public func toLayout(_ target: Layout) -> Tensor {
        if target == layout { return self }
        precondition(shape.count == 4, "layout conversion needs a 4-D tensor, got \(shape)")
        let out = Tensor(shape: shape, layout: target, zeroed: false)
        let n = shape[0], c = shape[1], hw = shape[2] * shape[3]
        let bi = layout.block, bo = target.block, tile = max(bi, bo)
        precondition(c % tile == 0, "layout conversion: \(c) channels in blocks of \(tile)")
        let src = storage, dst = out.storage
        // One task per (image, group of `tile` channels): both sides of a group are `tile`·hw floats in one region,
        // read and written position by position (runs of bi contiguous floats on the source side, bo on the other).
        parallelFor(n * (c / tile)) { task in
            let ni = task / (c / tile), c0 = (task % (c / tile)) * tile
            for p in 0..<hw {
                for j in 0..<tile {
                    let ci = c0 + j
                    dst[((ni * (c / bo) + ci / bo) * hw + p) * bo + ci % bo] = src[((ni * (c / bi) + ci / bi) * hw + p) * bi + ci % bi]
                }
            }
        }
        return out
    }
}

/// Calls `body` with the storage of two tensors; both stay alive for the call.
public func withUnsafeMutablePointers<R>(
    _ a: Tensor, _ b: Tensor,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws -> R
) rethrows -> R {
    try a.withUnsafeMutablePointer { pa in try b.withUnsafeMutablePointer { pb in try body(pa, pb) } }
}

/// Calls `body` with the storage of three tensors; all stay alive for the call.
public func withUnsafeMutablePointers<R>(
    _ a: Tensor, _ b: Tensor, _ c: Tensor,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws -> R
) rethrows -> R {
    try withUnsafeMutablePointers(a, b) { pa, pb in try c.withUnsafeMutablePointer { pc in try body(pa, pb, pc) } }
}

/// Calls `body` with the storage of four tensors; all stay alive for the call.
public func withUnsafeMutablePointers<R>(
    _ a: Tensor, _ b: Tensor, _ c: Tensor, _ d: Tensor,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
             UnsafeMutablePointer<Float>) throws -> R
) rethrows -> R {
    try withUnsafeMutablePointers(a, b, c) { pa, pb, pc in try d.withUnsafeMutablePointer { pd in try body(pa, pb, pc, pd) } }
}

/// Calls `body` with the storage of `t`, or nil when `t` is nil (optional bias, momentum buffer).
public func withOptionalUnsafeMutablePointer<R>(
    _ t: Tensor?, _ body: (UnsafeMutablePointer<Float>?) throws -> R
) rethrows -> R {
    guard let t else { return try body(nil) }
    return try t.withUnsafeMutablePointer { try body($0) }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(layout))" }
}
