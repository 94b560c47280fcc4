import CImageCodecs
import Foundation

/// An image file format that `Imaging` reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png
    case jpeg

    /// The format named by the file's first bytes (its magic number), or `nil` if neither PNG nor JPEG.
    public static func detect(_ bytes: [UInt8]) -> ImageFormat? {
        bytes.withUnsafeBufferPointer { buffer in
            switch ic_detect_format(buffer.baseAddress, buffer.count) {
            case IC_FORMAT_PNG: return .png
            case IC_FORMAT_JPEG: return .jpeg
            default: return nil
            }
        }
    }
}

/// Format and size of an image file, read from its header without decoding pixels.
public struct ImageInfo: Sendable, Equatable {
    /// The file's format.
    public let format: ImageFormat
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int

    /// Describes an image of `format` and size `width × height`.
    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }

    /// Reads the header of an in-memory file; `name` is used in errors. Throws if the header is invalid
    /// or if `width × height` exceeds `maxPixels`.
    public static func probe(data: [UInt8], name: String, maxPixels: Int = RGBImage.defaultMaxPixels) throws
        -> ImageInfo
    {
        guard !data.isEmpty else { throw ImagingError(file: name, "empty file (0 bytes)") }
        guard let format = ImageFormat.detect(data) else { throw ImagingError(file: name, "not a PNG or JPEG image") }
        guard maxPixels > 0 else { throw ImagingError(file: name, "maxPixels must be positive, got \(maxPixels)") }
        var width: UInt32 = 0
        var height: UInt32 = 0
        try callCodec(name: name) { err, cap in
            data.withUnsafeBufferPointer { buffer in
                switch format {
                case .png:
                    ic_png_read_header(buffer.baseAddress, buffer.count, UInt64(maxPixels), &width, &height, err, cap)
                case .jpeg:
                    ic_jpeg_read_header(buffer.baseAddress, buffer.count, UInt64(maxPixels), &width, &height, err, cap)
                }
            }
        }
        return ImageInfo(format: format, width: Int(width), height: Int(height))
    }
}

extension RGBImage {
    /// The default decoding limit on `width × height`: 100 megapixels.
    public static let defaultMaxPixels = 100_000_000

    /// Decodes a PNG or JPEG file held in memory to RGB8, exactly as Pillow's
    /// `Image.open(f).convert("RGB")` does (alpha dropped, not composited; see `codec_png.c` and
    /// `codec_jpeg.c` for the 16-bit and CMYK rules). The format comes from the magic bytes, not the name.
    /// Images whose header claims more than `maxPixels` pixels are refused before any pixel memory is
    /// allocated. `name` (usually the path) is used in errors.
    public static func decode(data: [UInt8], name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        let info = try ImageInfo.probe(data: data, name: name, maxPixels: maxPixels)
        let count = info.width * info.height * 3
        var failure: ImagingError?
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            initialized = 0
            do {
                try callCodec(name: name) { err, cap in
                    data.withUnsafeBufferPointer { input in
                        switch info.format {
                        case .png:
                            ic_png_decode_rgb8(
                                input.baseAddress, input.count, UInt64(maxPixels), out.baseAddress, count, err, cap)
                        case .jpeg:
                            ic_jpeg_decode_rgb8(
                                input.baseAddress, input.count, UInt64(maxPixels), out.baseAddress, count, err, cap)
                        }
                    }
                }
                initialized = count
            } catch let error as ImagingError {
                failure = error
            } catch {
                failure = ImagingError(file: name, "\(error)")
            }
        }
        if let failure { throw failure }
        return try RGBImage(width: info.width, height: info.height, pixels: pixels)
    }

    /// Decodes a PNG or JPEG file held in `Data`; see `decode(data:name:maxPixels:)` for `[UInt8]`.
    public static func decode(data: Data, name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try decode(data: [UInt8](data), name: name, maxPixels: maxPixels)
    }

    /// Reads and decodes a PNG or JPEG file; errors name the file's path.
    public static func load(contentsOf url: URL, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try decode(data: readImageFileBytes(url), name: url.path, maxPixels: maxPixels)
    }

    /// Encodes as an 8-bit RGB PNG carrying `text` as text chunks, in order: tEXt when key and value are
    /// Latin-1, uncompressed iTXt (UTF-8) otherwise. Keys are 1–79 printable Latin-1 characters without
    /// leading, trailing or doubled spaces; neither keys nor values may contain NUL.
    public func pngData(text: [(String, String)] = []) throws -> [UInt8] {
        var keys: [[CChar]] = []
        var values: [[CChar]] = []
        var latin1: [Int32] = []
        for (key, value) in text {
            try Self.checkPNGKey(key)
            guard !value.unicodeScalars.contains("\0") else {
                throw ImagingError("PNG text value for \"\(key)\" contains a NUL character")
            }
            keys.append(Self.latin1Bytes(key)! + [0])
            if let bytes = Self.latin1Bytes(value) {
                values.append(bytes + [0])
                latin1.append(1)
            } else {
                values.append(value.utf8.map { CChar(bitPattern: $0) } + [0])
                latin1.append(0)
            }
        }
        return try Self.withCStringArray(keys) { keyPointers in
            try Self.withCStringArray(values) { valuePointers in
                try encodeOutput(name: "PNG") { out, size, err, cap in
                    pixels.withUnsafeBufferPointer { rgb in
                        latin1.withUnsafeBufferPointer { flags in
                            ic_png_encode_rgb8(
                                rgb.baseAddress, UInt32(width), UInt32(height), keyPointers, valuePointers,
                                flags.baseAddress, text.count, out, size, err, cap)
                        }
                    }
                }
            }
        }
    }

    /// Encodes as a baseline JPEG (4:2:0 chroma subsampling, optimized Huffman tables); `quality` is 1–100.
    public func jpegData(quality: Int = 95) throws -> [UInt8] {
        guard (1...100).contains(quality) else { throw ImagingError("JPEG quality must be 1–100, got \(quality)") }
        return try encodeOutput(name: "JPEG") { out, size, err, cap in
            pixels.withUnsafeBufferPointer { rgb in
                ic_jpeg_encode_rgb8(rgb.baseAddress, UInt32(width), UInt32(height), Int32(quality), out, size, err, cap)
            }
        }
    }

    /// Encodes in `format`; `text` applies to PNG only, `quality` to JPEG only.
    public func encoded(as format: ImageFormat, text: [(String, String)] = [], quality: Int = 95) throws -> [UInt8] {
        switch format {
        case .png: return try pngData(text: text)
        case .jpeg: return try jpegData(quality: quality)
        }
    }

    /// Encodes in `format` and writes the file atomically; errors name the file.
    public func write(to url: URL, format: ImageFormat, text: [(String, String)] = [], quality: Int = 95) throws {
        let bytes: [UInt8]
        do {
            bytes = try encoded(as: format, text: text, quality: quality)
        } catch let error as ImagingError {
            throw ImagingError(file: url.path, error.message)
        }
        do {
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw ImagingError(file: url.path, "cannot write: \(error.localizedDescription)")
        }
    }

    private static func checkPNGKey(_ key: String) throws {
        let scalars = Array(key.unicodeScalars)
        let printable = scalars.allSatisfy { (32...126).contains($0.value) || (161...255).contains($0.value) }
        guard (1...79).contains(scalars.count), printable, scalars.first != " ", scalars.last != " ",
            !key.contains("  ")
        else {
            throw ImagingError(
                "invalid PNG text key \"\(key)\": needs 1–79 printable Latin-1 characters, "
                    + "no leading, trailing or double spaces"
            )
        }
    }

    /// The string's Latin-1 bytes, or `nil` if it has characters outside Latin-1.
    private static func latin1Bytes(_ string: String) -> [CChar]? {
        var bytes: [CChar] = []
        for scalar in string.unicodeScalars {
            guard scalar.value <= 0xff else { return nil }
            bytes.append(CChar(bitPattern: UInt8(scalar.value)))
        }
        return bytes
    }

    private static func withCStringArray<R>(
        _ strings: [[CChar]], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R
    ) rethrows -> R {
        var pointers: [UnsafePointer<CChar>?] = []
        var storage: [UnsafeMutableBufferPointer<CChar>] = []
        defer { for copy in storage { copy.deallocate() } }
        for string in strings {
            let copy = UnsafeMutableBufferPointer<CChar>.allocate(capacity: string.count)
            _ = copy.initialize(from: string)
            storage.append(copy)
            pointers.append(UnsafePointer(copy.baseAddress))
        }
        return try pointers.withUnsafeBufferPointer { try body($0.baseAddress) }
    }

    private typealias Encoder = (
        _ out: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, _ size: UnsafeMutablePointer<Int>,
        _ err: UnsafeMutablePointer<CChar>, _ errCapacity: Int
    ) -> ic_status

    /// Runs an encoder and copies its heap output into an array, freeing it.
    private func encodeOutput(name: String, _ body: Encoder) throws -> [UInt8] {
        var buffer: UnsafeMutablePointer<UInt8>?
        var size = 0
        defer { ic_buffer_free(buffer) }
        try callCodec(name: nil) { err, cap in body(&buffer, &size, err, cap) }
        guard let buffer, size > 0 else { throw ImagingError("\(name) encoder produced no data") }
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }
}

/// The text chunks (tEXt, zTXt, iTXt) of a PNG file in file order, as (key, value) pairs; pixels are not
/// decoded. Errors name the file.
public func readPNGTextEntries(_ url: URL) throws -> [(key: String, value: String)] {
    try readPNGTextEntries(data: readImageFileBytes(url), name: url.path)
}

/// The text chunks of an in-memory PNG file in file order; `name` is used in errors.
public func readPNGTextEntries(data: [UInt8], name: String) throws -> [(key: String, value: String)] {
    guard !data.isEmpty else { throw ImagingError(file: name, "empty file (0 bytes)") }
    guard ImageFormat.detect(data) == .png else { throw ImagingError(file: name, "not a PNG image") }
    var text: OpaquePointer?
    defer { ic_text_free(text) }
    try callCodec(name: name) { err, cap in
        data.withUnsafeBufferPointer { ic_png_read_text($0.baseAddress, $0.count, &text, err, cap) }
    }
    return (0..<ic_text_count(text)).map { index in
        (String(cString: ic_text_key(text, index)), String(cString: ic_text_value(text, index)))
    }
}

/// The text chunks of a PNG file as a dictionary (a later chunk with the same key wins).
public func readPNGText(_ url: URL) throws -> [String: String] {
    Dictionary(try readPNGTextEntries(url).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
}

/// Reads a whole file; errors name it.
func readImageFileBytes(_ url: URL) throws -> [UInt8] {
    do {
        return [UInt8](try Data(contentsOf: url))
    } catch {
        throw ImagingError(file: url.path, "cannot read: \(error.localizedDescription)")
    }
}

/// Runs one C codec call with an error buffer and turns a failure status into an `ImagingError`.
private func callCodec(name: String?, _ body: (UnsafeMutablePointer<CChar>, Int) -> ic_status) throws {
    let capacity = 512
    var message = [CChar](repeating: 0, count: capacity)
    let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, capacity) }
    guard status != IC_OK else { return }
    let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    throw ImagingError(file: name, text.isEmpty ? "image codec failed with status \(status.rawValue)" : text)
}
