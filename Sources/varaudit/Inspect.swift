import ArgumentParser
import Checkpoints
import Foundation

extension VarAudit {
    /// `varaudit inspect`: lists the tensors of a checkpoint file (safetensors or PyTorch `.bin`).
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tensors (name, shape) of a .safetensors or PyTorch .bin checkpoint.",
            discussion: """
                PyTorch .bin files are read with a restricted unpickler that only rebuilds tensors: a file \
                that asks for any other Python global is refused, and nothing in it is executed.
                """
        )

        @Argument(help: "Checkpoint files (.safetensors, .bin, .pt).")
        var files: [String]

        @Flag(help: "Print JSON: [{\"file\", \"tensors\": [{\"name\", \"shape\"}], \"parameters\"}].")
        var json = false

        func run() throws {
            var reports: [[String: Any]] = []
            for file in files {
                let archive = try loadTensorArchive(url: URL(fileURLWithPath: file))
                var tensors: [[String: Any]] = []
                var parameters = 0
                for key in archive.keys {
                    let shape = try archive.shape(of: key)
                    parameters += shape.reduce(1, *)
                    tensors.append(["name": key, "shape": shape])
                }
                if json {
                    reports.append(["file": file, "tensors": tensors, "parameters": parameters])
                } else {
                    print("\(file): \(archive.keys.count) tensors, \(parameters) parameters")
                    for t in tensors {
                        print("  \(t["name"] as? String ?? "")  \(t["shape"] as? [Int] ?? [])")
                    }
                }
            }
            if json { try printJSON(reports) }
        }
    }
}

/// Prints a JSON value (pretty, sorted keys) on stdout.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
