import CLibEV
import ConfigModel
import Glibc

/// `strata -vv`: what strata was built with and what it runs on, as HAProxy's `-vv` prints it
/// (a bug report starts from these lines).
enum BuildInfo {
    static var text: String {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return """
            strata version \(strataVersion)
            Running on: \(field(name.sysname)) \(field(name.release)) \(field(name.version)) \(field(name.machine))
            Build options :
              SWIFT   = \(swift)
              CONFIG  = \(configuration)

            Default settings :
              bufsize = \(GlobalSettings().bufferSize), maxhdr = \(GlobalSettings().maxHeaders), nbthread = one per CPU

            Built with libev version : \(EV_VERSION_MAJOR).\(EV_VERSION_MINOR)
            Running on libev version : \(ev_version_major()).\(ev_version_minor())
            Built with OpenSSL version : OpenSSL \(OPENSSL_VERSION_STR)
            Running on OpenSSL version : \(String(cString: OpenSSL_version(OPENSSL_VERSION)))
            """
    }

    /// The compiler's language version (Package.swift asks for tools 6.0 or later).
    static var swift: String {
        #if compiler(>=6.4)
        "6.4 or later"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #elseif compiler(>=6.1)
        "6.1"
        #else
        "6.0"
        #endif
    }

    static var configuration: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }
}
