// ecomstream-generator: flags -> GeneratorConfig -> Validate -> Generator::Run until the run's end
// or SIGTERM. The bootstrap (flags, exit codes, tracing, status server, signals) is common/service.h.
#include <string>

#include "common/service.h"
#include "services/generator/generator.h"
#include "services/generator/generator_flags.h"

int main(int argc, char** argv) {
  using namespace ecomstream;
  using namespace ecomstream::generator;
  Service service("generator", kUsage, argc, argv);
  if (const std::string address = HealthCheckAddressFromFlags(); !address.empty()) {
    return service.HealthCheck(ProbeReady(address), "ready");
  }
  const GeneratorConfig config = ConfigFromFlags();
  if (absl::Status status = config.Validate(); !status.ok()) return service.ConfigError(status);
  if (absl::Status status = service.StartTelemetry(); !status.ok()) return service.ConfigError(status);
  auto generator = Generator::Create(config, SystemClock::Get(), &service.registry(), service.tracer());
  if (!generator.ok()) return service.ConfigError(generator.status());
  const absl::Status serving =
      service.ServeStatus(MetricsAddressFromFlags(), [&generator] { return (*generator)->running(); });
  if (!serving.ok()) return service.ConfigError(serving);
  const absl::Status result =
      service.Run([&generator] { return (*generator)->Run().status(); }, [&generator] { (*generator)->Stop(); });
  return service.Finish(result, "Generator failed");
}
