import CLibEV

/// Making a libnghttp2 session, the same for both sides of strata: callbacks set by the caller;
/// the options every strata session has (window updates sent as a stream's session takes the
/// bytes, so a slow reader holds its peer back; at most 8 CONTINUATION frames and 32 settings per
/// SETTINGS frame); then the SETTINGS strata announces.
enum H2Session {
    enum Side { case server, client }

    /// A session with `user` as its user data, or nil when libnghttp2 could not make it or take
    /// the SETTINGS. `tune` adds options of one side.
    static func make(_ side: Side, user: AnyObject, callbacks set: (OpaquePointer) -> Void,
                     tune: (OpaquePointer) -> Void = { _ in }, settings: [nghttp2_settings_entry]) -> OpaquePointer? {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return nil }
        defer { nghttp2_session_callbacks_del(callbacks) }
        set(callbacks)
        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_continuations(option, 8)
        nghttp2_option_set_max_settings(option, 32)
        tune(option)
        var s: OpaquePointer?
        let me = Unmanaged.passUnretained(user).toOpaque()
        let made = side == .server ? nghttp2_session_server_new2(&s, callbacks, me, option)
                                   : nghttp2_session_client_new2(&s, callbacks, me, option)
        guard made == 0, let s else { return nil }
        var entries = settings
        guard nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count) == 0 else {
            nghttp2_session_del(s)
            return nil
        }
        return s
    }

    static func setting(_ id: nghttp2_settings_id, _ value: Int) -> nghttp2_settings_entry {
        nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: UInt32(value))
    }
}
