import ConfigModel
import Loader
import Testing

/// `chroot`, and `user`/`group` on a stats socket.
@Suite struct PrivilegeKeywordTests {
    static let listen = "listen app\n    bind 127.0.0.1:8080\n    server a 127.0.0.1:8081\n"

    @Test func chrootIsReadAsAnAbsoluteDirectory() throws {
        let loaded = try load("global\n    chroot /var/empty\n" + Self.listen)
        #expect(loaded.config.global.chroot == "/var/empty")
        #expect(errors("global\n    chroot var/empty\n" + Self.listen) == ["test.cfg:2: 'chroot' expects an absolute directory, got 'var/empty'"])
        #expect(errors("global\n    chroot\n" + Self.listen).first?.contains("expects a directory") == true)
    }

    @Test func statsSocketOwnerAndGroup() throws {
        let loaded = try load("global\n    stats socket /run/s.sock mode 660 user root group root level admin\n    stats socket /run/t.sock uid 7 gid 8\n" + Self.listen)
        let sockets = loaded.config.global.statsSockets
        #expect(sockets.map(\.owner) == [0, 7])
        #expect(sockets.map(\.group) == [0, 8])
        #expect(sockets.first?.mode == 0o660)
        #expect(sockets.map(\.exposeListeners) == [false, false])
        let exposed = try load("global\n    stats socket /run/s.sock level admin expose-fd listeners\n    master-worker no-exit-on-failure\n" + Self.listen)
        #expect(exposed.config.global.statsSockets.first?.exposeListeners == true)
        #expect(errors("global\n    stats socket /run/s.sock user no-such-user-here\n" + Self.listen)
            == ["test.cfg:2: 'user' on stats socket: unknown user 'no-such-user-here'"])
    }
}
