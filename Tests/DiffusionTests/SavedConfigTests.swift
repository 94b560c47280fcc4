import Checkpoints
import Diffusion
import Foundation
import TestSupport
import Testing

/// Scheduler configs as diffusers 0.42 saves them (`SchedulerClass().save_config(...)`, copied into
/// `Tests/Fixtures/schedulers/saved/`): Python's JSON writes `-Infinity` for DPM's `lambda_min_clipped`.
/// Expected timesteps printed by diffusers 0.42.1 for the same configs.
struct SavedConfigTests {
    @Test func dpmConfigWithInfinityLoads() throws {
        let config = try SchedulerConfig.load(url: Fixtures.url("schedulers/saved/dpm.json"))
        var dpm = try makeScheduler(kind: nil, config: config)
        try dpm.setTimesteps(20)
        #expect(dpm.kind == .dpmSolverMultistep)
        #expect(
            dpm.timesteps == [
                999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50,
            ])
    }

    @Test func eulerConfigLoads() throws {
        var euler = try makeScheduler(
            kind: nil, config: SchedulerConfig.load(url: Fixtures.url("schedulers/saved/euler.json")))
        try euler.setTimesteps(5)
        #expect(euler.timesteps == [999, 749.25, 499.5, 249.75, 0])
        #expect(abs(euler.initNoiseSigma - 157.40727) < 1e-3)
    }

    @Test func settingsThatChangeSamplingAreRefusedByKey() throws {
        for (json, key) in [
            (#"{"use_karras_sigmas": false, "use_exponential_sigmas": true}"#, "use_exponential_sigmas"),
            (#"{"timestep_type": "continuous"}"#, "timestep_type"),
            (#"{"use_lu_lambdas": true}"#, "use_lu_lambdas"),
        ] {
            do {
                _ = try SchedulerConfig.decode(Data(json.utf8), source: "scheduler_config.json")
                Issue.record("\(json) was accepted")
            } catch let e as CheckpointError {
                #expect(e.key == key, "\(e)")
            }
        }
    }
}
