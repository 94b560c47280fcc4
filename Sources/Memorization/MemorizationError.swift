/// Errors raised by the Memorization module; they name the file, key or argument at fault.
public struct MemorizationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, naming the file, key or argument.
    public let message: String

    public init(_ message: String) { self.message = message }

    /// An error about `file` (its path leads the message).
    public init(file: String, _ message: String) { self.message = "\(file): \(message)" }

    public var description: String { message }
}
