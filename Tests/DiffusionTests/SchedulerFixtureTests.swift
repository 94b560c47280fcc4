import Checkpoints
import Diffusion
import Foundation
import Tensors
import TestSupport

/// `Tests/Fixtures/schedulers/schedulers.json` (written by `tools/fixtures/make_schedulers.py`).
struct SchedulerFixture: Decodable {
    struct TimestepCase: Decodable {
        let kind: String
        let config: String
        let steps: Int
        let timesteps: [Double]
        let initNoiseSigma: Double
        let sigmas: [Double]?

        enum CodingKeys: String, CodingKey {
            case kind, config, steps, timesteps, sigmas
            case initNoiseSigma = "init_noise_sigma"
        }
    }

    struct LoopCase: Decodable {
        let name: String
        let kind: String
        let config: String
        let steps: Int
        let seed: UInt64
        let eta: Double
        let shape: [Int]
        let count: Int
    }

    let timestepCases: [TimestepCase]
    let loopCases: [LoopCase]
    /// The named configs, re-decoded as `SchedulerConfig` from their JSON.
    var configs: [String: SchedulerConfig] = [:]

    enum CodingKeys: String, CodingKey {
        case timestepCases = "timestep_cases"
        case loopCases = "loop_cases"
    }

    static func load() throws -> SchedulerFixture {
        let data = try Data(contentsOf: Fixtures.url("schedulers/schedulers.json"))
        var fixture = try JSONDecoder().decode(SchedulerFixture.self, from: data)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let configs = root["configs"] as? [String: Any]
        else { throw DiffusionError("schedulers.json: no configs") }
        for (name, value) in configs {
            let json = try JSONSerialization.data(withJSONObject: value)
            fixture.configs[name] = try SchedulerConfig.decode(json, source: "schedulers.json:\(name)")
        }
        return fixture
    }

    func config(_ name: String) throws -> SchedulerConfig {
        guard let c = configs[name] else { throw DiffusionError("schedulers.json: no config \(name)") }
        return c
    }
}

/// The fixtures' stand-in for a UNet: `eps = x·0.9 + 0.05·min(x·x, 1) + t·1e-5`, float32 op for op as in torch.
func syntheticModel(_ x: Tensor, timestep: Float) -> Tensor {
    let c = timestep * Float(1e-5)
    return map(x) { v in v * Float(0.9) + Float(0.05) * min(v * v, 1) + c }
}

/// A scheduler config decoded from JSON text.
func schedulerConfig(_ json: String) throws -> SchedulerConfig {
    try SchedulerConfig.decode(Data(json.utf8))
}
