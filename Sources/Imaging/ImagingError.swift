/// Errors from reading, writing and preprocessing images; they name the file where there is one.
public struct ImagingError: Error, CustomStringConvertible, Sendable {
    /// The file at fault, if any.
    public let file: String?
    /// What is wrong.
    public let message: String

    public init(file: String? = nil, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String {
        if let file { return "\(file): \(message)" }
        return message
    }
}
