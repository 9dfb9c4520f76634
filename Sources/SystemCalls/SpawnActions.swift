import CLinux
import Glibc

/// Makes `actions` leave the spawned program descriptors 0-2 and nothing else. What this process
/// inherited without close-on-exec (a parent's pipe or socket, libcurl's sockets) would otherwise
/// reach a credential helper and any daemon it starts, and stay open after the run: whoever
/// waits for end-of-file on them would wait for that daemon.
public func closeInheritedDescriptors(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>) {
    _ = clinux_spawn_close_from(actions, 3)
}
