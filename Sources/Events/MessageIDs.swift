import Core

/// 128-bit journal MESSAGE_IDs, one per event kind; packaging/systemd/kvsupervisor.catalog explains each.
public enum MessageIDs {
    public static func id(for kind: EventKind) -> String {
        // Fixed prefix + the kind's index: stable as long as EventKind cases are only appended.
        let index = EventKind.allCases.firstIndex(of: kind)!
        let suffix = String(index, radix: 16)
        return "6b7673757065727669736f72" + String(repeating: "0", count: 8 - suffix.count) + suffix
    }
}
