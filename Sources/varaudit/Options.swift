import ArgumentParser
import Foundation
import Imaging

/// The input pictures of every command that reads images: `--input FILE` (repeatable) and `--inputs DIR`
/// (repeatable; its `.png`, `.jpg` and `.jpeg` files, sorted by name, dotfiles skipped).
struct InputOptions: ParsableArguments {
    @Option(name: .customLong("input"), help: "An input image (PNG or JPEG); repeat for several.")
    var files: [String] = []

    @Option(name: .customLong("inputs"), help: "A folder of input images (.png, .jpg, .jpeg; sorted by name).")
    var directories: [String] = []

    var isEmpty: Bool { files.isEmpty && directories.isEmpty }

    /// The files given, then each folder's images; `legacy` adds files and folders from older spellings.
    /// A missing file or an empty folder is a runtime error naming it.
    func urls(legacyFiles: [String] = [], legacyDirectories: [String] = []) throws -> [URL] {
        var out: [URL] = []
        for path in files + legacyFiles {
            guard FileManager.default.fileExists(atPath: path) else { throw RuntimeError("\(path): no such input file") }
            out.append(URL(fileURLWithPath: path))
        }
        for dir in directories + legacyDirectories {
            let found = try ImageFiles.list(in: URL(fileURLWithPath: dir))
            if found.isEmpty { throw RuntimeError("\(dir): no PNG or JPEG images in the folder") }
            out += found
        }
        return out
    }

    static let missing = ValidationError("give --input FILE or --inputs DIR")
}

/// A safety checker and its concepts, as `safety`, `audit` and the `concepts` commands take them.
struct CheckerOptions: ParsableArguments {
    @Option(help: "A pipeline folder, a folder holding safety_checker/, or a safety_checker folder.")
    var checker: String?

    @Option(help: "A concept-set file (concepts/README.md); default: the checker's own concepts.")
    var concepts: String?
}

/// `--json`: machine-readable output on stdout.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print JSON.")
    var json = false
}

/// A failure while running (not a usage error): printed as one line naming the file or argument, exit status 1.
struct RuntimeError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
