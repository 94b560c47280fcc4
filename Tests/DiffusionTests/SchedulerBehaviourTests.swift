import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

@testable import Diffusion

/// Counts draws and returns zeros (to check where and how often schedulers draw noise).
struct CountingRandomSource: RandomSource {
    var shapes: [[Int]] = []
    mutating func normal(shape: [Int]) -> Tensor {
        shapes.append(shape)
        return Tensor(zeros: shape)
    }
}

/// Scheduler construction, config handling (diffusers `from_config` semantics, refusals that name the key) and
/// the reference values in docs/algorithms.md#schedulers.
struct SchedulerBehaviourTests {
    static let lambdaJSON = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.9.0", "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
         "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}
        """

    func lambda() throws -> SchedulerConfig { try schedulerConfig(Self.lambdaJSON) }

    /// Replaces or adds keys in the lambdalabs config.
    func lambda(with extra: String) throws -> SchedulerConfig {
        let parse = { (text: String) throws -> [String: Any] in
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        }
        let merged = try parse(Self.lambdaJSON).merging(parse("{" + extra + "}")) { _, new in new }
        return try SchedulerConfig.decode(JSONSerialization.data(withJSONObject: merged))
    }

    @Test func alphasCumprodMatchesTorch() throws {
        let s = try NoiseSchedule(config: lambda(), scheduler: "test")
        #expect(s.alphasCumprod[0] == 0.99914998)
        #expect(s.alphasCumprod[999] == 0.0046600951)
    }

    @Test func pndmFiftyStepsOfTheDefaultConfig() throws {
        var s = try makeScheduler(kind: nil, config: lambda())
        #expect(s.kind == .pndm)
        try s.setTimesteps(50)
        #expect(s.timesteps.count == 51)
        #expect(Array(s.timesteps.prefix(4)) == [981, 961, 961, 941])
        #expect(s.timesteps.last == 1)
        #expect(s.initNoiseSigma == 1)
        #expect(s.timesteps.count - s.numInferenceSteps * s.order == 1)  // the pipeline's warm-up count
    }

    @Test func eulerFiftyStepsOverrideKeepsConfigValues() throws {
        var e = try makeScheduler(kind: .euler, config: lambda())
        try e.setTimesteps(50)
        #expect(e.timesteps.first == 999)
        #expect(abs((e.timesteps[1]) - 978.6122) < 1e-4)
        #expect(e.timesteps.last == 0)
        #expect(e.initNoiseSigma == 14.614647)
        var leading = try makeScheduler(kind: .euler, config: lambda(with: "\"timestep_spacing\": \"leading\""))
        try leading.setTimesteps(50)
        #expect(Array(leading.timesteps.prefix(2)) == [981, 961])
        #expect(leading.initNoiseSigma == 13.158469)
    }

    @Test func nilKindFollowsClassName() throws {
        for kind in SchedulerKind.allCases {
            let s = try makeScheduler(kind: nil, config: lambda(with: "\"_class_name\": \"\(kind.className)\""))
            #expect(s.kind == kind)
            #expect(SchedulerKind(className: kind.className) == kind)
        }
        #expect(SchedulerKind(rawValue: "euler-a") == .eulerAncestral)
        #expect(SchedulerKind(rawValue: "dpm++2m") == .dpmSolverMultistep)
        let noName = try schedulerConfig(#"{"beta_schedule": "scaled_linear", "skip_prk_steps": true}"#)
        #expect(throws: DiffusionError.self) { try makeScheduler(kind: nil, config: noName) }
        #expect(try makeScheduler(kind: .ddim, config: noName).kind == .ddim)
    }

    /// Absent keys take the new class's defaults: DDIM clips x̂₀ and uses ᾱ_prev = 1 at the end.
    @Test func absentKeysTakeClassDefaults() throws {
        let minimal = try schedulerConfig(
            #"{"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}"#
        )
        let ddim = try DDIMScheduler(config: minimal)
        #expect(ddim.clipRange == 1)
        #expect(ddim.finalAlphaCumprod == 1)
        #expect(ddim.spacing == .leading)
        #expect(try EulerDiscreteScheduler(config: minimal).spacing == .linspace)
        #expect(try DPMSolverMultistepScheduler(config: minimal).spacing == .linspace)
        let kept = try DDIMScheduler(config: lambda())
        #expect(kept.clipRange == nil)
        #expect(kept.finalAlphaCumprod == kept.schedule.alphasCumprod[0])
        #expect(kept.stepsOffset == 1)
    }

    /// Each refusal names the config key at fault.
    @Test(arguments: [
        (SchedulerKind.pndm, #""prediction_type": "sample""#, "prediction_type"),
        (.ddim, #""thresholding": true"#, "thresholding"),
        (.ddim, #""rescale_betas_zero_snr": true"#, "rescale_betas_zero_snr"),
        (.euler, #""interpolation_type": "log_linear""#, "interpolation_type"),
        (.euler, #""final_sigmas_type": "other""#, "final_sigmas_type"),
        (.eulerAncestral, #""prediction_type": "sample""#, "prediction_type"),
        (.dpmSolverMultistep, #""algorithm_type": "sde-dpmsolver++""#, "algorithm_type"),
        (.dpmSolverMultistep, #""solver_order": 3"#, "solver_order"),
        (.dpmSolverMultistep, #""solver_type": "other""#, "solver_type"),
    ])
    func unsupportedValuesNameTheKey(kind: SchedulerKind, extra: String, key: String) throws {
        let config = try lambda(with: extra)
        do {
            _ = try makeScheduler(kind: kind, config: config)
            Issue.record("\(kind) accepted \(extra)")
        } catch let error as DiffusionError {
            #expect(error.description.contains(key), "\(error)")
        }
    }

    @Test func stepCountsAndTimestepsAreChecked() throws {
        for kind in SchedulerKind.allCases {
            var s = try makeScheduler(kind: kind, config: lambda())
            #expect(throws: DiffusionError.self) { try s.setTimesteps(0) }
            #expect(throws: DiffusionError.self) { try s.setTimesteps(1001) }
        }
        var euler = try makeScheduler(kind: .euler, config: lambda())
        try euler.setTimesteps(5)
        #expect(throws: DiffusionError.self) { try euler.scaleModelInput(Tensor(zeros: [1, 4, 2, 2]), timestep: 3.5) }
        var ddim = try makeScheduler(kind: .ddim, config: lambda())
        var random = CountingRandomSource()
        #expect(throws: DiffusionError.self) {
            try ddim.step(modelOutput: Tensor(zeros: [1]), timestep: 1, sample: Tensor(zeros: [1]), random: &random)
        }
    }

    /// Noise is drawn with the model output's shape: DDIM only when eta > 0, Euler ancestral on every step
    /// (the last included), the deterministic schedulers never.
    @Test func noiseDrawsHappenWhereDiffusersDrawsThem() throws {
        let shape = [2, 4, 3, 3]
        let cases: [(SchedulerKind, Float, Int)] = [
            (.pndm, 0, 0), (.ddim, 0, 0), (.ddim, 0.5, 6), (.euler, 0, 0), (.eulerAncestral, 0, 6),
            (.dpmSolverMultistep, 0, 0),
        ]
        for (kind, eta, draws) in cases {
            var s = try makeScheduler(kind: kind, config: lambda(), eta: eta)
            try s.setTimesteps(6)
            var random = CountingRandomSource()
            var x = Tensor(repeating: 0.5, shape: shape)
            for t in s.timesteps {
                let input = try s.scaleModelInput(x, timestep: t)
                x = try s.step(modelOutput: scale(input, 0.1), timestep: t, sample: x, random: &random)
            }
            #expect(random.shapes.count == draws, "\(kind) eta \(eta)")
            let shapesMatch = random.shapes.allSatisfy { $0 == shape }
            let finite = x.scalars.allSatisfy { $0.isFinite }
            #expect(shapesMatch)
            #expect(finite, "\(kind)")
        }
    }

    /// `step` works through an existential scheduler and an existential random source, as the pipeline holds them.
    @Test func existentialsWork() throws {
        var s: any Scheduler = try makeScheduler(kind: .eulerAncestral, config: lambda())
        try s.setTimesteps(3)
        var random: any RandomSource = TorchCPURandomSource(seed: 0)
        var x = random.normal(shape: [1, 4, 2, 2])
        for t in s.timesteps {
            x = try s.step(modelOutput: x, timestep: t, sample: x, random: &random)
        }
        let finite = x.scalars.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(s.modelTimestep(s.timesteps[1]) == Float(s.timesteps[1]))
    }
}
