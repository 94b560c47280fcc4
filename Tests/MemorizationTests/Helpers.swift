import Checkpoints
import Foundation
import Memorization
import Tensors
import TestSupport

/// Rows `range` of a `[n, d]` tensor.
func rows(_ x: Tensor, _ range: Range<Int>) throws -> Tensor {
    let d = x.shape[1]
    let all = x.scalars
    return try Tensor(shape: [range.count, d], values: Array(all[(range.lowerBound * d)..<(range.upperBound * d)]))
}

/// Writes `x` split into shards (alternately float32 and float16) and returns their URLs.
func writeShards(_ x: Tensor, in dir: URL, sizes: [Int], dtypes: [NPY.DType], prefix: String = "shard") throws -> [URL]
{
    var urls: [URL] = []
    var start = 0
    for (i, size) in sizes.enumerated() {
        let url = dir.appendingPathComponent("\(prefix)_\(i).npy")
        try NPY.write(try rows(x, start..<(start + size)), to: url, dtype: dtypes[i % dtypes.count])
        urls.append(url)
        start += size
    }
    return urls
}

/// Whether two best-first neighbour lists agree: same ids in the same order, scores within `tolerance`; a
/// swap of two neighbours whose exact scores tie within `tie` is accepted.
func sameNeighbours(_ a: [Neighbor], _ b: [Neighbor], tolerance: Float = 1e-4, tie: Float = 1e-5) -> Bool {
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) {
        if abs(x.score - y.score) > tolerance { return false }
        if x.id != y.id {
            // Accept only a tie: y's id must appear in a at (nearly) the same score.
            guard let other = a.first(where: { $0.id == y.id }), abs(other.score - y.score) <= tie else { return false }
        }
    }
    return true
}
