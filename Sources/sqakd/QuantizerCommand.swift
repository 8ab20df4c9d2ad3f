import ArgumentParser
import Foundation
import Quantization

/// `sqakd quantizer list|curve`: inspect the registered quantizers.
struct QuantizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantizer",
        abstract: "Inspect the registered quantizers.",
        subcommands: [QuantizerList.self, QuantizerCurveCommand.self])
}

struct QuantizerList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the quantizers with their bit-widths and settings.")

    func run() throws {
        for s in QuantizerRegistry.schemes {
            let bits = s.supportedBits.count == 1 ? "\(s.supportedBits.lowerBound)" : "\(s.supportedBits.lowerBound)-\(s.supportedBits.upperBound)"
            let settings = s.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            print("\(s.name.padding(toLength: 8, withPad: " ", startingAt: 0)) bits \(bits.padding(toLength: 6, withPad: " ", startingAt: 0)) \(s.summary)"
                  + (settings.isEmpty ? "" : "  [settings: \(settings)]"))
        }
    }
}

struct QuantizerCurveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curve",
        abstract: "Tabulate or plot a quantizer's y(x), its surrogate dy/dx and the gradients of its parameters.",
        discussion: """
            Each row runs the quantizer's forward and backward (upstream gradient 1) on one value x.
            --set takes scheme settings (e.g. delta) and the quantizer's scalar parameters (e.g. lA=0 uA=1).
            Example: sqakd quantizer curve ewgs --bits 2 --role activation --set lA=0 --set uA=1 --csv
            """)

    @Argument(help: "Quantizer name (see `sqakd quantizer list`).") var name: String
    @Option(help: "Bit-width.") var bits: Int
    @Option(help: "weight or activation.") var role: String = "activation"
    @Option(name: .customLong("set"), help: "key=value (repeatable).") var assignments: [String] = []
    @Option(help: "First x (default: the quantizer's own range).") var from: Float?
    @Option(help: "Last x.") var to: Float?
    @Option(help: "Number of x values.") var steps: Int = 401
    @Flag(help: "Print CSV to standard output.") var csv = false
    @Option(help: "Write a PNG plot to this file.") var png: String?

    func run() throws {
        guard csv || png != nil else { throw ValidationError("give --csv and/or --png FILE") }
        guard let r = QuantizerRole(rawValue: role) else { throw ValidationError("--role must be weight or activation, got '\(role)'") }
        var set: [String: Double] = [:]
        for a in assignments {
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let v = Double(parts[1]), v.isFinite else {
                throw ValidationError("--set expects key=number, got '\(a)'")
            }
            set[parts[0]] = v
        }
        do {
            let scheme = try QuantizerRegistry.scheme(named: name)
            let curve = try QuantizerCurve.compute(scheme: scheme, role: r, bits: bits, set: set, from: from, to: to, steps: steps)
            if csv { print(curve.csv(), terminator: "") }
            if let png {
                try curve.plot.writePNG(to: URL(fileURLWithPath: png), width: 900, height: 700)
                if !csv { print("wrote \(png)") }
            }
        } catch let e as QuantizationError {
            throw ValidationError(e.description)
        }
    }
}
