#include "common/status_server.h"

#include <httplib.h>

#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ecomstream {

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' is not host:port"));
  }
  std::string host(address.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' has no valid port"));
  }
  return std::make_pair(host, port);
}

StatusServer::StatusServer(metrics::Registry* registry, std::function<bool()> ready)
    : registry_(registry), ready_(std::move(ready)) {}

StatusServer::~StatusServer() { Stop(); }

void StatusServer::AddGet(std::string path, Handler handler) {
  extra_gets_.emplace_back(std::move(path), std::move(handler));
}

absl::Status StatusServer::Start(absl::string_view address) {
  auto host_port = SplitHostPort(address);
  if (!host_port.ok()) return host_port.status();
  server_ = std::make_unique<httplib::Server>();
  // httplib's default also sets SO_REUSEPORT, which would let a second instance share the port
  // silently; a taken port must be an error.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_->ExportText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = ready_ ? ready_() : true;
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  for (const auto& [path, handler] : extra_gets_) server_->Get(path, handler);
  const auto& [host, port] = *host_port;
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
    if (port_ < 0) return absl::UnavailableError(absl::StrCat("cannot bind the status server to ", address));
  } else {
    if (!server_->bind_to_port(host, port)) {
      return absl::UnavailableError(absl::StrCat("cannot bind the status server to ", address));
    }
    port_ = port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs; wait for it so that a Stop() right
  // after Start() cannot leave the loop running forever.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::OkStatus();
}

void StatusServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

absl::Status ProbeReady(absl::string_view address, int timeout_ms) {
  auto host_port = SplitHostPort(address);
  if (!host_port.ok()) return host_port.status();
  std::string host = host_port->first == "0.0.0.0" ? "127.0.0.1" : host_port->first;
  httplib::Client client(host, host_port->second);
  client.set_connection_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000);
  client.set_read_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000);
  auto result = client.Get("/readyz");
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("no answer from http://", address, "/readyz: ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::UnavailableError(absl::StrCat("http://", address, "/readyz answered ", result->status));
  }
  return absl::OkStatus();
}

}  // namespace ecomstream
