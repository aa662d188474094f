// native/tests/test_certs.h — self-signed certificates for the TLS and QUIC tests, made once per
// process by the openssl CLI: "a.test" (cert, key) and "b.test" (cert2, key2), ECDSA P-256.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace zio::testing {

inline std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Certs {
  std::string cert, key, cert2, key2;
};

inline const Certs& certs() {
  static Certs c = [] {
    Certs r;
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/zio-tls-test-XXXXXX";
    if (!mkdtemp(tmpl.data())) abort();
    std::string d = tmpl;
    for (const char* n : {"a", "b"}) {
      std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                        "-subj /CN=" + std::string(n) + ".test -addext subjectAltName=DNS:" + n +
                        ".test -keyout " + d + "/" + n + ".key -out " + d + "/" + n + ".crt 2>/dev/null";
      if (system(cmd.c_str()) != 0) abort();
    }
    r.cert = slurp(d + "/a.crt");
    r.key = slurp(d + "/a.key");
    r.cert2 = slurp(d + "/b.crt");
    r.key2 = slurp(d + "/b.key");
    std::string rm = "rm -rf " + d;
    if (system(rm.c_str()) != 0) {}  // the PEM text is in memory now
    return r;
  }();
  return c;
}

}  // namespace zio::testing
