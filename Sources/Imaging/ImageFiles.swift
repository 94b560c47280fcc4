import Foundation

/// Listing the pictures of a folder: the one rule every command follows.
public enum ImageFiles {
    /// Extensions read from folders (any case).
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    /// The `.png`, `.jpg` and `.jpeg` files directly in `directory` (not recursive; dotfiles skipped), sorted by
    /// name. Errors name the folder.
    public static func list(in directory: URL) throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw ImagingError(file: directory.path, "cannot list folder: \(error.localizedDescription)")
        }
        return names.filter { !$0.hasPrefix(".") && extensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted()
            .map { directory.appendingPathComponent($0) }
    }
}
