import Checkpoints
import Foundation
import Safety
import Tensors
import TestSupport
import Testing

/// The concept-set file format (concepts/README.md): round trips, references, and errors that name the file
/// and the concept.
struct ConceptSetTests {
    func sample() -> ConceptSet {
        ConceptSet(
            name: "sample", description: "two concepts and a special",
            provenance: ConceptSetProvenance(source: "x.safetensors", sha256: String(repeating: "0", count: 64)),
            concepts: [
                Concept(name: "a", kind: .concept, threshold: 0.18, embedding: [1, 0, 0]),
                Concept(name: "b", kind: .special, threshold: -0.0005, enabled: false, embedding: [0, 1, 0.5]),
                Concept(name: "c", kind: .concept, threshold: 1e-5, embedding: [0.1, 0.2, 0.3]),
            ])
    }

    func write(_ text: String, _ name: String = "set.json", in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func roundTripsInlineAndThroughNPY() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let set = sample()
        let inline = dir.appendingPathComponent("inline.json")
        try set.write(to: inline)
        var back = try ConceptSet.load(url: inline)
        #expect(back.concepts == set.concepts && back.adjustment == 0.01 && back.provenance == set.provenance)
        #expect(back.source == inline.path)
        let withNPY = dir.appendingPathComponent("npy.json")
        try set.write(to: withNPY, embeddingsFile: "npy.npy")
        back = try ConceptSet.load(url: withNPY)
        #expect(back.concepts.map(\.embedding) == set.concepts.map(\.embedding))
        #expect(back.concepts.map(\.threshold) == set.concepts.map(\.threshold))
        #expect(back.concepts[1].reference == EmbeddingReference(file: "npy.npy", row: 1))
        #expect(try NPY.read(url: dir.appendingPathComponent("npy.npy")).shape == [3, 3])
    }

    @Test func readsSafetensorsReferencesAndDefaults() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try SafeTensorsWriter.write(
            ["m": try Tensor(shape: [2, 2], values: [1, 2, 3, 4]), "v": try Tensor(shape: [2], values: [5, 6])],
            to: dir.appendingPathComponent("e.safetensors"))
        let url = try write(
            """
            {"concepts": [{"name": "x", "threshold": 0.2, "embedding": {"file": "e.safetensors", "key": "m", "row": 1}},
                          {"name": "y", "kind": "special", "threshold": 0, "embedding": {"file": "e.safetensors", "key": "v"}}]}
            """, in: dir)
        let set = try ConceptSet.load(url: url)
        #expect(set.name == "set" && set.adjustment == 0.01)
        #expect(set.concepts[0].embedding == [3, 4] && set.concepts[0].kind == .concept && set.concepts[0].enabled)
        #expect(set.concepts[1].embedding == [5, 6] && set.concepts[1].kind == .special)
    }

    /// Loads `text` and expects an error mentioning the file and each of `mentions`.
    func expectError(_ text: String, mentions: [String], files: [String: Data] = [:]) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, data) in files { try data.write(to: dir.appendingPathComponent(name)) }
        let url = try write(text, in: dir)
        let error = #expect(throws: SafetyError.self) { try ConceptSet.load(url: url) }
        let message = error?.description ?? ""
        #expect(message.contains(url.path), "\(message)")
        for m in mentions { #expect(message.contains(m), "\(message) should mention \(m)") }
    }

    @Test func malformedFilesNameTheFileAndConcept() throws {
        try expectError("{\"concepts\": [", mentions: ["not valid JSON"])
        try expectError("[]", mentions: ["not a JSON object"])
        try expectError("{}", mentions: ["concepts"])
        try expectError("{\"format\": \"other\", \"concepts\": []}", mentions: ["format"])
        try expectError("{\"concepts\": [{\"threshold\": 1, \"embedding\": [1]}]}", mentions: ["#0", "name"])
        try expectError(
            "{\"concepts\": [{\"name\": \"k\", \"kind\": \"violence\", \"threshold\": 1, \"embedding\": [1]}]}",
            mentions: ["\"k\"", "kind"])
        try expectError("{\"concepts\": [{\"name\": \"t\", \"embedding\": [1]}]}", mentions: ["\"t\"", "threshold"])
        try expectError(
            "{\"concepts\": [{\"name\": \"t\", \"threshold\": \"high\", \"embedding\": [1]}]}",
            mentions: ["\"t\"", "threshold"])
        try expectError(
            "{\"concepts\": [{\"name\": \"s\", \"threshold\": 1, \"embedding\": [1, \"x\"]}]}",
            mentions: ["\"s\"", "non-number"])
        try expectError(
            "{\"concepts\": [{\"name\": \"z\", \"threshold\": 1, \"embedding\": [0, 0]}]}",
            mentions: ["\"z\"", "zeros"])
        try expectError(
            """
            {"concepts": [{"name": "d", "threshold": 1, "embedding": [1, 2]}, {"name": "d", "threshold": 1, "embedding": [1, 2]}]}
            """, mentions: ["\"d\"", "twice"])
        try expectError(
            "{\"concepts\": [{\"name\": \"e\", \"threshold\": 1, \"enabled\": \"yes\", \"embedding\": [1]}]}",
            mentions: ["\"e\"", "enabled"])
    }

    @Test func wrongEmbeddingSizeNamesTheConcept() throws {
        try expectError(
            """
            {"concepts": [{"name": "ok", "threshold": 1, "embedding": [1, 2, 3]}, {"name": "short", "threshold": 1, "embedding": [1, 2]}]}
            """, mentions: ["\"short\"", "2 values, expected 3"])
        try expectError(
            "{\"embedding_size\": 4, \"concepts\": [{\"name\": \"ok3\", \"threshold\": 1, \"embedding\": [1, 2, 3]}]}",
            mentions: ["\"ok3\"", "expected 4"])
        // Against a checker: the set is fine on its own, but the checker's projection is 24 wide.
        let set = ConceptSet(
            name: "n", concepts: [Concept(name: "narrow", kind: .concept, threshold: 0.1, embedding: [1, 2, 3])],
            source: "/some/set.json")
        let checker = try SafetyChecker(directory: SafetyFixture.checkerURL)
        let error = #expect(throws: SafetyError.self) { try checker.scorer(concepts: set) }
        #expect(error?.description.contains("/some/set.json") == true)
        #expect(error?.description.contains("\"narrow\"") == true)
        #expect(error?.description.contains("projection_dim") == true)
    }

    @Test func missingOrBadReferencesNameTheFileAndConcept() throws {
        try expectError(
            "{\"concepts\": [{\"name\": \"gone\", \"threshold\": 1, \"embedding\": {\"file\": \"nowhere.npy\", \"row\": 0}}]}",
            mentions: ["\"gone\"", "nowhere.npy", "not found"])
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let npy = dir.appendingPathComponent("e.npy")
        try NPY.write(try Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), to: npy)
        let data = try Data(contentsOf: npy)
        try expectError(
            "{\"concepts\": [{\"name\": \"far\", \"threshold\": 1, \"embedding\": {\"file\": \"e.npy\", \"row\": 2}}]}",
            mentions: ["\"far\"", "e.npy", "row 2 out of range"], files: ["e.npy": data])
        try expectError(
            "{\"concepts\": [{\"name\": \"norow\", \"threshold\": 1, \"embedding\": {\"file\": \"e.npy\"}}]}",
            mentions: ["\"norow\"", "row"], files: ["e.npy": data])
        try expectError(
            "{\"concepts\": [{\"name\": \"junk\", \"threshold\": 1, \"embedding\": {\"file\": \"e.npy\", \"row\": 0}}]}",
            mentions: ["\"junk\"", "e.npy", "cannot read"], files: ["e.npy": Data("not numpy".utf8)])
        try expectError(
            "{\"concepts\": [{\"name\": \"nokey\", \"threshold\": 1, \"embedding\": {\"file\": \"e.safetensors\"}}]}",
            mentions: ["\"nokey\"", "key"], files: ["e.safetensors": Data()])
    }

    @Test func extractedSetEqualsTheCheckpointAndScoresTheSame() throws {
        let checker = try SafetyChecker(directory: SafetyFixture.checkerURL)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("sd.json")
        try checker.builtInConcepts.write(to: url, embeddingsFile: "sd.npy")
        let set = try ConceptSet.load(url: url)
        #expect(set.concepts.map(\.embedding) == checker.builtInConcepts.concepts.map(\.embedding))
        #expect(set.concepts.map(\.threshold) == checker.builtInConcepts.concepts.map(\.threshold))
        let images = try SafetyFixture().images()
        #expect(try checker.check(images, concepts: set) == checker.check(images))
    }
}
