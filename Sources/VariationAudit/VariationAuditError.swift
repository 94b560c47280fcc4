/// An error of an audit or generation run, naming the file or argument at fault.
public struct VariationAuditError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(file: String? = nil, _ message: String) {
        description = file.map { "\($0): \(message)" } ?? message
    }
}

/// The version recorded in every run and printed by `varaudit --version`.
public enum VariationAuditVersion {
    public static let current = "0.2.0"
}
