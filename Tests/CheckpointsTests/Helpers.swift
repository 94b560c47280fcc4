import Checkpoints
import Foundation
import TestSupport
import Testing

/// A file under `Tests/Fixtures/checkpoints/`.
func fixture(_ path: String) -> URL {
    Fixtures.url("checkpoints/\(path)")
}

/// Runs `body`, expecting a `CheckpointError` whose description contains every one of `fragments`.
func expectCheckpointError(
    _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected a CheckpointError mentioning \(fragments)", sourceLocation: sourceLocation)
    } catch let error as CheckpointError {
        for f in fragments {
            #expect(error.description.contains(f), "'\(error)' should mention '\(f)'", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a CheckpointError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// The shape and leading values torch held, from `ref*/expected.json` (independent of the .npy reader).
struct ExpectedSummary: Decodable {
    let shape: [Int]
    let first: [Float]

    static func load(_ folder: String) throws -> [String: ExpectedSummary] {
        let data = try Data(contentsOf: fixture("\(folder)/expected.json"))
        return try JSONDecoder().decode([String: ExpectedSummary].self, from: data)
    }
}
