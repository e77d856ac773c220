/// One server's line of a server-state file (HAProxy's version 1, what `show servers state`
/// writes), read at start by the Loader and matched to a server of the configuration: the
/// engine applies it to that server before any traffic, as HAProxy does when a new process
/// starts with `load-server-state-from-file`.
public struct SavedServerState: Hashable, Sendable {
    /// The running configuration's backend and server this line applies to.
    public var backend: String
    public var server: String
    /// `srv_addr` (nil for `-`): applied only to a server given by host name (HAProxy's
    /// `init-addr last`, its default); an address literal in the configuration wins.
    public var address: IPAddress?
    /// `srv_op_state`: 0 stopped, 1 starting, 2 running, 3 stopping.
    public var operationalState: Int
    /// `srv_admin_state` without the inherited and FQDN flags: 0x01 forced maintenance, 0x04
    /// maintenance from the configuration (`disabled`), 0x08 forced drain.
    public var adminState: Int
    /// `srv_uweight` (the weight in effect) and `srv_iweight` (the configured one then).
    public var userWeight: Int
    public var initialWeight: Int
    /// `srv_time_since_last_change`, seconds.
    public var secondsSinceLastChange: Int
    /// `srv_check_status`, `srv_check_result`, `srv_check_health`, `srv_check_state`.
    public var checkStatus: Int
    public var checkResult: Int
    public var checkHealth: Int
    public var checkState: Int
    /// `srv_agent_state`: configured 0x02, enabled 0x04 (`disable agent` clears it).
    public var agentState: Int
    /// `srv_port`: HAProxy applies it to the server whatever the configuration says (0: none).
    public var port: UInt16?

    public init(backend: String, server: String, address: IPAddress? = nil, operationalState: Int = 2,
                adminState: Int = 0, userWeight: Int = 1, initialWeight: Int = 1, secondsSinceLastChange: Int = 0,
                checkStatus: Int = 0, checkResult: Int = 0, checkHealth: Int = 0, checkState: Int = 0,
                agentState: Int = 0, port: UInt16? = nil) {
        self.backend = backend
        self.server = server
        self.address = address
        self.operationalState = operationalState
        self.adminState = adminState
        self.userWeight = userWeight
        self.initialWeight = initialWeight
        self.secondsSinceLastChange = secondsSinceLastChange
        self.checkStatus = checkStatus
        self.checkResult = checkResult
        self.checkHealth = checkHealth
        self.checkState = checkState
        self.agentState = agentState
        self.port = port
    }
}
