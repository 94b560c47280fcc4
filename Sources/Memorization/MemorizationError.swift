/// Errors raised by the Memorization module; they name the file, key or argument at fault.
public struct MemorizationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, naming the file, key or argument.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
