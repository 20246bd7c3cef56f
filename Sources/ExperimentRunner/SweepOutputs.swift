import Core
import Experiments

/// Writes a sweep's tables, plots and reports into its run directory (at the end of every
/// session, so a cancelled or failed run has a partial report that says so).
enum SweepOutputs {
    static func write(to dir: RunDirectory, spec: DetectionSweepSpec, plan: SweepPlan, summary: SweepSummary,
                      manifest: RunManifest) throws(RunDirectory.IOError) {
        let records = summary.records
        let context = RunOutputs.context(dir, manifest: manifest, total: plan.trials.count,
                                         sessionTrials: { n in records.filter { $0.session == n }.count })
        for f in SweepReport.files(spec: spec, plan: plan, summary: summary, context: context) { try dir.write(f.name, f.text) }
    }
}
