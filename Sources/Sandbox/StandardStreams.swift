/// The command's standard input, output and error.
public struct StandardStreams: Sendable, Equatable {
    /// Where one stream comes from.
    public enum Source: Sendable, Equatable {
        /// The supervisor's own descriptor of that number, shared with the command.
        case inherited
        /// This descriptor, which the sandbox takes over: it is closed once the command has its
        /// copy (or the sandbox fails to start), so a reader of a pipe sees EOF when the sandbox is gone.
        case takenOver(Int32)
    }

    public var input: Source
    public var output: Source
    public var error: Source

    public init(input: Source = .inherited, output: Source = .inherited, error: Source = .inherited) {
        self.input = input
        self.output = output
        self.error = error
    }

    /// All three the supervisor's own.
    public static let inherited = StandardStreams()

    /// The descriptors to close once the child has its copies, each once (output and error may share one).
    var takenOver: Set<Int32> {
        Set([input, output, error].compactMap { if case .takenOver(let fd) = $0 { fd } else { nil } })
    }

    /// What the child dup2()s onto 0, 1 and 2; -1 leaves that one inherited.
    var childDescriptors: (Int32, Int32, Int32) {
        func raw(_ source: Source) -> Int32 { if case .takenOver(let fd) = source { fd } else { -1 } }
        return (raw(input), raw(output), raw(error))
    }
}
