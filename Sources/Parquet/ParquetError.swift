/// Errors raised by the Parquet module; they name the file (and, where it applies, the row group and column).
public struct ParquetError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, naming the file.
    public let message: String

    public init(_ message: String) { self.message = message }

    /// An error about `file` (its path leads the message).
    public init(file: String, _ message: String) { self.message = "\(file): \(message)" }

    public var description: String { message }
}

/// A malformed structure found while decoding bytes; `ParquetFile` turns it into a `ParquetError` that names
/// the file and where in it.
struct Malformed: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
