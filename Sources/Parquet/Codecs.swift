import CParquetCodecs

/// Decompresses one page (or the values part of a v2 page) into exactly `size` bytes, the size its header
/// declares (already checked against the reader's page limit).
func decompress(_ codec: ParquetCompression, _ input: UnsafeRawBufferPointer, size: Int) throws -> [UInt8] {
    if codec == .uncompressed {
        guard input.count == size else {
            throw Malformed("uncompressed page holds \(input.count) bytes but its header says \(size)")
        }
        return Array(input)
    }
    guard codec.isSupported else { throw Malformed("compression \(codec.rawValue) is not supported") }
    guard input.count > 0 else { throw Malformed("\(codec.rawValue) page has no compressed bytes") }
    var message = [CChar](repeating: 0, count: 256)
    let src = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
    func failure(_ status: pqc_status) -> Malformed {
        let text = message.withUnsafeBufferPointer { p in
            String(decoding: p.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return Malformed(text.isEmpty ? "\(codec.rawValue) decompression failed (status \(status.rawValue))" : text)
    }
    switch codec {
    case .snappy:
        // Validated before anything is allocated.
        let checked = pqc_snappy_check(src, input.count, size, &message, message.count)
        guard checked == PQC_OK else { throw failure(checked) }
        var out = [UInt8](repeating: 0, count: max(size, 1))
        let status = out.withUnsafeMutableBufferPointer { dst in
            pqc_snappy_decompress(src, input.count, dst.baseAddress, size, &message, message.count)
        }
        guard status == PQC_OK else { throw failure(status) }
        if size == 0 { out.removeAll() }
        return out
    default:
        // Streamed into a buffer that grows with the output, up to the declared size.
        var buffer: UnsafeMutablePointer<UInt8>?
        let status =
            codec == .zstd
            ? pqc_zstd_decompress(src, input.count, size, &buffer, &message, message.count)
            : pqc_gzip_decompress(src, input.count, size, &buffer, &message, message.count)
        defer { pqc_free(buffer) }
        guard status == PQC_OK else { throw failure(status) }
        guard size > 0, let buffer else { return [] }
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }
}

/// Snappy-compresses `input` (for the small writer).
func snappyCompress(_ input: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: pqc_snappy_max_compressed_length(input.count))
    var length = out.count
    let status = input.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            pqc_snappy_compress(src.baseAddress, src.count, dst.baseAddress, &length)
        }
    }
    precondition(status == PQC_OK, "snappy_compress failed on a buffer of its own maximum size")
    out.removeSubrange(length...)
    return out
}
