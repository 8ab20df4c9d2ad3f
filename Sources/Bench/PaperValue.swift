import Foundation
import Tensors

/// One number of the paper (`suites/paper-results.csv`, copied from ../shared/paper/): the table it
/// comes from, its cell, the metric (top1/top5, %) and where it was read.
public struct PaperValue: Equatable, Sendable {
    public var table: String
    public var dataset: String
    public var model: String
    public var quantizer: String
    public var bits: Int
    public var method: Method
    public var metric: String
    public var value: Double
    public var source: String

    static let header = ["table", "dataset", "model", "quantizer", "bits", "method", "metric", "value", "source"]

    public static func load(_ url: URL) throws -> [PaperValue] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SuiteError("cannot read the paper's numbers at \(url.relativePathForDisplay): \(fileErrorReason(error))")
        }
        let rows = CSV.parse(text)
        guard let head = rows.first, head == header else {
            throw SuiteError("\(url.relativePathForDisplay): expected the header \(header.joined(separator: ","))")
        }
        return try rows.dropFirst().enumerated().map { i, r in
            guard r.count == header.count, let bits = Int(r[4]), let method = Method(rawValue: r[5]), let value = Double(r[7]) else {
                throw SuiteError("\(url.relativePathForDisplay):\(i + 2): malformed row '\(r.joined(separator: ","))'")
            }
            return PaperValue(table: r[0], dataset: r[1], model: r[2], quantizer: r[3], bits: bits, method: method, metric: r[6],
                              value: value, source: r[8])
        }
    }
}

/// Minimal RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines.
enum CSV {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var it = Array(text).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let n = it.next() { if n == "\"" { field.append("\"") } else { quoted = false; pending = n } } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                row.append(field); field = ""
            } else if c == "\n" || c == "\r\n" {
                row.append(field); field = ""
                if !(row.count == 1 && row[0].isEmpty) { rows.append(row) }
                row = []
            } else if c != "\r" {
                field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    static func escape(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func line(_ fields: [String]) -> String { fields.map(escape).joined(separator: ",") + "\n" }
}
