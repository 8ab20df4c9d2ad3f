import Foundation

/// Mean, sample standard deviation (n − 1; 0 for one value) and count of a cell's values over seeds.
public struct Summary: Equatable, Sendable {
    public var values: [Double]
    public var n: Int { values.count }
    public var mean: Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(n) }
    public var std: Double {
        guard n > 1 else { return n == 1 ? 0 : .nan }
        let m = mean
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n - 1)).squareRoot()
    }
    /// Standard error of the mean.
    public var sem: Double { n > 1 ? std / Double(n).squareRoot() : .nan }

    public init(_ values: [Double]) { self.values = values }

    /// "89.46 ± 0.57 (n=3)"; one value prints without a spread.
    public var formatted: String {
        guard n > 0 else { return "—" }
        return n == 1 ? String(format: "%.2f (n=1)", mean) : String(format: "%.2f ± %.2f (n=%d)", mean, std, n)
    }
}

/// SQAKD − baseline for one cell: the difference of the means and Welch's t-test over seeds.
public struct Difference: Equatable, Sendable {
    public var delta: Double
    /// Welch's t statistic and Welch–Satterthwaite degrees of freedom; nil with fewer than 2 seeds a side
    /// or zero spread on both sides.
    public var t: Double?
    public var df: Double?

    public init(_ a: Summary, minus b: Summary) {
        delta = a.mean - b.mean
        guard a.n >= 2, b.n >= 2 else { return }
        let va = a.std * a.std / Double(a.n), vb = b.std * b.std / Double(b.n)
        guard va + vb > 0 else { return }
        t = delta / (va + vb).squareRoot()
        df = (va + vb) * (va + vb) / (va * va / Double(a.n - 1) + vb * vb / Double(b.n - 1))
    }

    /// Two-sided p < 0.05.
    public var significant: Bool? {
        guard let t, let df else { return nil }
        return abs(t) > Self.tCritical95(df: df)
    }

    /// "significant" / "n.s." / "n<2": the simple indication the tables print.
    public var mark: String {
        switch significant {
        case .some(true): return "p<0.05"
        case .some(false): return "n.s."
        case .none: return "n<2"
        }
    }

    /// Two-sided 95% critical value of Student's t with `df` degrees of freedom (table, linear in 1/df
    /// between entries).
    static func tCritical95(df: Double) -> Double {
        let table: [(Double, Double)] = [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365),
                                         (8, 2.306), (9, 2.262), (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086),
                                         (30, 2.042), (60, 2.000), (120, 1.980)]
        if df <= 1 { return table[0].1 }
        for i in 1..<table.count where df <= table[i].0 {
            let (d0, t0) = table[i - 1], (d1, t1) = table[i]
            let w = (1 / df - 1 / d0) / (1 / d1 - 1 / d0)
            return t0 + w * (t1 - t0)
        }
        return 1.960
    }
}
