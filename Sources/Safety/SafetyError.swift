/// Errors raised by the Safety module; they name the file, key or argument at fault.
public struct SafetyError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, naming the file, key or argument.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
