/// Which Raft group holds a key: `sha256(key)[0] % groups`, the original lab's function, the same
/// in kvnode, kvctl and the experiments. Only the hash's first byte counts, so at most 256
/// groups can be told apart (the config allows far fewer).
public enum KeyGroups {
    public static let maxGroups = 64

    public static func group(of key: String, groups: Int) -> Int {
        groups <= 1 ? 0 : Int(SHA256.hash(key.utf8)[0]) % groups
    }
}
