import Tensors
import Testing

/// Whether `actual` is within `atol + rtol·|expected|` of `expected` (the `torch.allclose` rule; not
/// symmetric: the tolerance scales with the expected value). Equal values pass (also ±∞); NaN on either
/// side fails.
@inlinable
public func isClose<T: BinaryFloatingPoint>(_ actual: T, _ expected: T, atol: T, rtol: T) -> Bool {
    actual == expected || abs(actual - expected) <= atol + rtol * abs(expected)
}

/// Records an issue at the caller's file and line unless every element of `actual` `isClose` to the same
/// element of `expected`. The message gives the number of failing elements, the worst one (largest excess
/// over its tolerance; NaN counts as worst) and `hint` (e.g. how to regenerate a golden file).
@inlinable
public func expectClose<T: BinaryFloatingPoint>(_ actual: [T], _ expected: [T], atol: T, rtol: T, _ what: String = "",
                                                hint: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var bad = 0, worst = -1
    var worstExcess = -T.infinity
    for i in actual.indices where !isClose(actual[i], expected[i], atol: atol, rtol: rtol) {
        bad += 1
        let excess = abs(actual[i] - expected[i]) - (atol + rtol * abs(expected[i]))
        let e = excess.isNaN ? T.infinity : excess
        if worst < 0 || e > worstExcess { worst = i; worstExcess = e }
    }
    if bad > 0 {
        Issue.record("""
            \(what): \(bad) of \(actual.count) elements differ beyond atol \(atol), rtol \(rtol); worst at flat index \
            \(worst): got \(actual[worst]), expected \(expected[worst])\(hint.isEmpty ? "" : ". " + hint)
            """, sourceLocation: sourceLocation)
    }
}

/// `expectClose` on tensors, compared in plain row-major order whatever their layouts. Shapes must match,
/// except that a 0-d expected tensor (a PyTorch scalar) matches any one-element tensor.
public func expectClose(_ actual: Tensor, _ expected: Tensor, atol: Float, rtol: Float, _ what: String = "",
                        hint: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count, actual.shape == expected.shape || expected.shape.isEmpty else {
        Issue.record("\(what): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    expectClose(actual.plainArray, expected.plainArray, atol: atol, rtol: rtol, what, hint: hint,
                sourceLocation: sourceLocation)
}

/// Scalar `expectClose`.
@inlinable
public func expectClose<T: BinaryFloatingPoint>(_ actual: T, _ expected: T, atol: T, rtol: T, _ what: String = "",
                                                hint: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    if !isClose(actual, expected, atol: atol, rtol: rtol) {
        Issue.record("\(what): got \(actual), expected \(expected) (atol \(atol), rtol \(rtol))\(hint.isEmpty ? "" : "; " + hint)",
                     sourceLocation: sourceLocation)
    }
}
