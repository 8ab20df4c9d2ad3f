/// Why a quantization request cannot be served; the message is meant for the command line.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    case unknownScheme(String, valid: [String])
    case unsupportedBits(scheme: String, bits: Int, supported: ClosedRange<Int>)
    case unknownSetting(scheme: String, key: String, valid: [String])
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unknownScheme(let name, let valid):
            return "unknown quantizer '\(name)'; valid names: \(valid.joined(separator: ", "))"
        case .unsupportedBits(let scheme, let bits, let supported):
            if supported.count == 1 {
                return "quantizer '\(scheme)' works at \(supported.lowerBound) bits only, got \(bits)"
            }
            return "quantizer '\(scheme)' supports \(supported.lowerBound)…\(supported.upperBound) bits, got \(bits)"
        case .unknownSetting(let scheme, let key, let valid):
            let list = valid.isEmpty ? "it has none" : "valid: " + valid.joined(separator: ", ")
            return "quantizer '\(scheme)' has no setting '\(key)'; \(list)"
        case .invalidArgument(let message):
            return message
        }
    }
}

/// Every quantization method, by name. Adding one = its file + one line here.
public enum QuantizerRegistry {
    public static let schemes: [any QuantizationScheme] = [
        FPScheme(),
        EWGSScheme(),
        PACTScheme(),
        LSQScheme(),
        DoReFaScheme(),
        STEScheme(),
        LearnablePACTScheme(),
    ]

    public static var names: [String] { schemes.map(\.name) }

    public static func scheme(named name: String) throws -> any QuantizationScheme {
        guard let s = schemes.first(where: { $0.name == name }) else {
            throw QuantizationError.unknownScheme(name, valid: names)
        }
        return s
    }

    /// Throws unless `bits` is in the scheme's supported range.
    public static func validate(_ scheme: any QuantizationScheme, bits: Int) throws {
        guard scheme.supportedBits.contains(bits) else {
            throw QuantizationError.unsupportedBits(scheme: scheme.name, bits: bits, supported: scheme.supportedBits)
        }
    }

    /// The scheme's defaults overridden by `settings`; unknown keys are errors.
    public static func resolve(_ scheme: any QuantizationScheme, settings: [String: Double]) throws -> [String: Double] {
        var resolved = scheme.settings
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            guard resolved[key] != nil else {
                throw QuantizationError.unknownSetting(scheme: scheme.name, key: key,
                                                       valid: scheme.settings.keys.sorted())
            }
            guard value.isFinite else {
                throw QuantizationError.invalidArgument("setting '\(key)' of '\(scheme.name)' must be finite, got \(value)")
            }
            resolved[key] = value
        }
        return resolved
    }
}
