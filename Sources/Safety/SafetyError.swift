/// Errors raised by the Safety module; they name the file, concept, key or argument at fault.
public struct SafetyError: Error, CustomStringConvertible, Sendable {
    /// The file at fault (a concept-set file, a referenced embedding file, a checker folder), if any.
    public let file: String?
    /// The concept at fault (its name, or `#N` for an unnamed entry), if any.
    public let concept: String?
    /// What is wrong.
    public let message: String

    public init(_ message: String) {
        file = nil
        concept = nil
        self.message = message
    }

    /// An error about `concept` (optional) in `file`.
    public init(file: String, concept: String? = nil, _ message: String) {
        self.file = file
        self.concept = concept
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let concept { parts.append("concept \"\(concept)\"") }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}
