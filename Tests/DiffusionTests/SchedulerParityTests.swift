import Checkpoints
import Diffusion
import Foundation
import Tensors
import TestSupport
import Testing

/// Schedulers against diffusers 0.42.1 (`tools/fixtures/make_schedulers.py`). Every scheduler is built with
/// `makeScheduler(kind:config:)` from a PNDM-class config, i.e. through diffusers' `from_config` override semantics.
///
/// Tolerances: integer timesteps exactly; float timesteps, σ and `init_noise_sigma` within 1e-6 relative;
/// latents after every step (and Euler's scaled inputs) within 1e-4 relative (floor 1% of the largest magnitude):
/// torch's CPU sqrt/exp/log are not correctly rounded, so results differ by a few ulps.
/// Observed on x86-64: integer timesteps exact; Euler-Karras fractional timesteps ≤ 5.6e-7 relative (log σ table
/// a few ulps off numpy's); σ ≤ 1.2e-7 relative; latents ≤ 1.8e-6 relative for the deterministic schedulers,
/// ≤ 1.1e-5 for the stochastic ones (DDIM η=0.7, Euler ancestral; their noise itself is bit-exact).
/// See docs/algorithms.md#shared-noise-schedule.
struct SchedulerParityTests {
    let fixture: SchedulerFixture

    init() throws { fixture = try SchedulerFixture.load() }

    static func kind(_ raw: String) throws -> SchedulerKind {
        guard let k = SchedulerKind(rawValue: raw) else { throw DiffusionError("unknown kind \(raw)") }
        return k
    }

    static func relative(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(b), 1e-12) }

    @Test func timestepsSigmasAndInitNoiseSigma() throws {
        #expect(fixture.timestepCases.count > 200)
        var worstSigma = 0.0
        var worstTimestep = 0.0
        for c in fixture.timestepCases {
            let label = "\(c.kind) \(c.config) N=\(c.steps)"
            let kind = try Self.kind(c.kind)
            var s = try makeScheduler(kind: kind, config: fixture.config(c.config))
            try s.setTimesteps(c.steps)
            #expect(s.timesteps.count == c.timesteps.count, "\(label): timestep count")
            guard s.timesteps.count == c.timesteps.count else { continue }
            if kind == .euler || kind == .eulerAncestral {
                for (a, b) in zip(s.timesteps, c.timesteps) {
                    worstTimestep = max(worstTimestep, Self.relative(a, b))
                    #expect(Self.relative(a, b) <= 1e-6, "\(label): timesteps \(s.timesteps) vs \(c.timesteps)")
                }
            } else {
                #expect(s.timesteps == c.timesteps, "\(label): timesteps \(s.timesteps) vs \(c.timesteps)")
            }
            #expect(Self.relative(Double(s.initNoiseSigma), c.initNoiseSigma) <= 1e-6, "\(label): init_noise_sigma")
            if let ref = c.sigmas {
                let ours: [Float]
                switch s {
                case let e as EulerDiscreteScheduler: ours = e.sigmas
                case let e as EulerAncestralDiscreteScheduler: ours = e.sigmas
                case let d as DPMSolverMultistepScheduler: ours = d.sigmas
                default: ours = []
                }
                #expect(ours.count == ref.count, "\(label): sigma count")
                for (a, b) in zip(ours, ref) {
                    let e = b == 0 ? Double(abs(a)) : Self.relative(Double(a), b)
                    worstSigma = max(worstSigma, e)
                    #expect(e <= 1e-6, "\(label): sigma \(a) vs \(b)")
                }
            }
        }
        print("scheduler timesteps: worst float timestep relative error \(worstTimestep), sigma \(worstSigma)")
    }

    @Test func denoisingLoopsMatchDiffusers() throws {
        let ref = try Fixtures.tensors("schedulers/loops.safetensors")
        #expect(fixture.loopCases.count >= 20)
        for c in fixture.loopCases {
            let kind = try Self.kind(c.kind)
            var s = try makeScheduler(kind: kind, config: fixture.config(c.config), eta: Float(c.eta))
            try s.setTimesteps(c.steps)
            #expect(s.timesteps.count == c.count, "\(c.name): timestep count")
            var random = TorchCPURandomSource(seed: c.seed)
            var latents = scale(random.normal(shape: c.shape), s.initNoiseSigma)
            #expect(try relativeError(latents, ref.tensor(named: "\(c.name).init")) <= 1e-6, "\(c.name): init")
            var worst: Float = 0
            for (i, t) in s.timesteps.enumerated() {
                let input = try s.scaleModelInput(latents, timestep: t)
                if kind == .euler || kind == .eulerAncestral {
                    let e = try relativeError(input, ref.tensor(named: "\(c.name).scaled.\(i)"))
                    #expect(e <= 1e-4, "\(c.name) step \(i): scaled input error \(e)")
                }
                let eps = syntheticModel(input, timestep: s.modelTimestep(t))
                latents = try s.step(modelOutput: eps, timestep: t, sample: latents, random: &random)
                let e = try relativeError(latents, ref.tensor(named: "\(c.name).latents.\(i)"))
                worst = max(worst, e)
                #expect(e <= 1e-4, "\(c.name) step \(i) (t=\(t)): latents relative error \(e)")
            }
            print("scheduler loop \(c.name): \(s.timesteps.count) steps, worst latents relative error \(worst)")
        }
    }
}
