/// Errors from reading checkpoints and configs: always name the file, and the key where there is one.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    /// The file at fault.
    public let file: String
    /// The tensor or config key at fault, if any.
    public let key: String?
    /// What is wrong.
    public let message: String

    public init(file: String, key: String? = nil, _ message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String {
        if let key { return "\(file): \(key): \(message)" }
        return "\(file): \(message)"
    }
}
