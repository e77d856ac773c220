/// What HAProxy itself prints, for tests that compare strata's output with it when HAProxy is
/// not installed to ask.
public enum HAProxyReference {
    /// HAProxy 2.6's `show stat` header, its per-module counters after `-` too (what `echo "show
    /// stat" | socat stdio haproxy.sock` printed with haproxy 2.6.12, without the last comma).
    public static let showStatHeader = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out"

    /// HAProxy 2.6's `show info` fields, in order: the index is the field's position (`show info
    /// typed`'s number, stats.c `info_fields`). HAProxy 2.6.12 leaves out description without one,
    /// and ZlibMemUsage and MaxZlibMemUsage when built without zlib (Debian's is built with slz).
    public static let showInfoFields = [
        "Name", "Version", "Release_date", "Nbthread", "Nbproc", "Process_num", "Pid", "Uptime", "Uptime_sec",
        "Memmax_MB", "PoolAlloc_MB", "PoolUsed_MB", "PoolFailed", "Ulimit-n", "Maxsock", "Maxconn", "Hard_maxconn",
        "CurrConns", "CumConns", "CumReq", "MaxSslConns", "CurrSslConns", "CumSslConns", "Maxpipes", "PipesUsed",
        "PipesFree", "ConnRate", "ConnRateLimit", "MaxConnRate", "SessRate", "SessRateLimit", "MaxSessRate",
        "SslRate", "SslRateLimit", "MaxSslRate", "SslFrontendKeyRate", "SslFrontendMaxKeyRate",
        "SslFrontendSessionReuse_pct", "SslBackendKeyRate", "SslBackendMaxKeyRate", "SslCacheLookups",
        "SslCacheMisses", "CompressBpsIn", "CompressBpsOut", "CompressBpsRateLim", "ZlibMemUsage", "MaxZlibMemUsage",
        "Tasks", "Run_queue", "Idle_pct", "node", "description", "Stopping", "Jobs", "Unstoppable Jobs", "Listeners",
        "ActivePeers", "ConnectedPeers", "DroppedLogs", "BusyPolling", "FailedResolutions", "TotalBytesOut",
        "TotalSplicdedBytesOut", "BytesOutRate", "DebugCommandsIssued", "CumRecvLogs", "Build info", "Memmax_bytes",
        "PoolAlloc_bytes", "PoolUsed_bytes", "Start_time_sec", "Tainted",
    ]
}
