// Loads the built bb_network.so through the C ABI with a fake host serving recorded answers of
// the theblock profile, and checks what the glue hands to the agent.
#include <blockbuster/json.h>
#include <blockbuster/plugin_abi.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using blockbuster::Json;

std::string fixtureText(const std::string& name) {
  std::ifstream in(std::string(NETWORK_FIXTURES_DIR) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct FakeHost {
  std::map<std::string, std::string> answers;  // method -> result JSON text
  std::map<std::string, Json> published;
  struct Metric {
    std::string name;
    uint32_t kind, op;
    double value;
    std::vector<std::pair<std::string, std::string>> labels;
  };
  std::vector<Metric> metrics;
  std::map<std::string, double> features;
  std::vector<std::string> logs;
};

FakeHost* self(bb_host* h) { return reinterpret_cast<FakeHost*>(h); }

void appendTo(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
}

int rpcMany(bb_host* h, bb_rpc_request* reqs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    auto it = self(h)->answers.find(reqs[i].method);
    std::string out;
    if (it == self(h)->answers.end()) {
      reqs[i].status = BB_ERR_RPC;
      out = R"({"code":-32601,"message":"method not found"})";
    } else if (it->second == "TRANSPORT") {
      reqs[i].status = BB_ERR_TRANSPORT;
      out = R"({"code":0,"message":"connection refused"})";
    } else {
      reqs[i].status = BB_OK;
      out = it->second;
    }
    reqs[i].sink(reqs[i].sink_ctx, out.data(), out.size());
  }
  return BB_OK;
}

class NetworkPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lib_ = dlopen(BB_TEST_PLUGIN_DIR "/bb_network.so", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib_, nullptr) << dlerror();
    auto entry = reinterpret_cast<bb_plugin_entry_fn>(dlsym(lib_, BB_PLUGIN_ENTRY_SYMBOL));
    ASSERT_NE(entry, nullptr);
    plugin_ = entry();
    ASSERT_NE(plugin_, nullptr);

    api_.struct_size = sizeof(api_);
    api_.abi_major = BB_ABI_VERSION_MAJOR;
    api_.abi_minor = BB_ABI_VERSION_MINOR;
    api_.log = [](bb_host* h, int, const char* m) { self(h)->logs.push_back(m); };
    api_.rpc_call_many = &rpcMany;
    api_.publish = [](bb_host* h, const char* section, const char* json, size_t len) {
      self(h)->published[section] = Json::parse(std::string(json, len));
      return static_cast<int>(BB_OK);
    };
    api_.publish_error = [](bb_host*, const char*, const char*) { return static_cast<int>(BB_OK); };
    api_.metric = [](bb_host* h, const bb_metric* m) {
      FakeHost::Metric r{m->name, m->kind, m->op, m->value, {}};
      for (size_t i = 0; i < m->label_count; ++i)
        r.labels.emplace_back(m->label_names[i], m->label_values[i]);
      self(h)->metrics.push_back(r);
      return static_cast<int>(BB_OK);
    };
    api_.feature = [](bb_host* h, const char* name, double v) {
      self(h)->features[name] = v;
      return static_cast<int>(BB_OK);
    };

    host_.answers["net.overlay_status"] = fixtureText("theblock/net_overlay_status.json");
    host_.answers["net.peer_stats_all"] = fixtureText("theblock/net_peer_stats_all.json");
    host_.answers["light.headers"] = fixtureText("theblock/light_headers.json");
    host_.answers["light.latest_header"] = fixtureText("theblock/light_latest_header.json");
  }
  void TearDown() override {
    if (instance_) plugin_->destroy(instance_);
    if (lib_) dlclose(lib_);
  }

  // The options as the agent passes them: every declared key, defaults applied, then `over`.
  std::string config(const Json& over = Json::object()) {
    Json c = Json::object();
    for (uint32_t i = 0; i < plugin_->config_key_count; ++i)
      c[plugin_->config_keys[i].name] = Json::parse(plugin_->config_keys[i].default_json);
    for (const auto& [k, v] : over.asObject()) c[k] = v;
    return c.dump();
  }
  bool create(const Json& over = Json::object()) {
    instance_ = plugin_->create(reinterpret_cast<bb_host*>(&host_), &api_, config(over).c_str(),
                                &appendTo, &error_);
    return instance_ != nullptr;
  }
  int collect() {
    error_.clear();
    return plugin_->collect(instance_, &appendTo, &error_);
  }
  const FakeHost::Metric* last(const std::string& name, const std::string& label = "") {
    const FakeHost::Metric* found = nullptr;
    for (const auto& m : host_.metrics)
      if (m.name == name && (label.empty() || (!m.labels.empty() && m.labels[0].second == label)))
        found = &m;
    return found;
  }

  void* lib_ = nullptr;
  const bb_plugin* plugin_ = nullptr;
  bb_host_api api_{};
  FakeHost host_;
  void* instance_ = nullptr;
  std::string error_;
};

TEST_F(NetworkPluginTest, DeclaresItsNameAndConfigKeys) {
  EXPECT_STREQ(plugin_->name, "network");
  std::map<std::string, std::string> keys;
  for (uint32_t i = 0; i < plugin_->config_key_count; ++i)
    keys[plugin_->config_keys[i].name] = plugin_->config_keys[i].default_json;
  EXPECT_EQ(keys, (std::map<std::string, std::string>{{"finality_seconds_per_point", "10"},
                                                      {"finality_weight", "30"},
                                                      {"max_peers", "1000"},
                                                      {"peers_target", "50"},
                                                      {"peers_weight", "30"},
                                                      {"tps_target", "1000"},
                                                      {"tps_weight", "40"}}));
}

TEST_F(NetworkPluginTest, PublishesBothSectionsMetricsAndFeatures) {
  ASSERT_TRUE(create()) << error_;
  ASSERT_EQ(collect(), BB_OK) << error_;
  ASSERT_EQ(host_.published.count("metrics"), 1u);
  ASSERT_EQ(host_.published.count("peers"), 1u);
  const Json& m = host_.published["metrics"];
  EXPECT_EQ(m["block_height"], Json(236));
  EXPECT_EQ(m["peer_count"], Json(3));
  EXPECT_EQ(m["network_strength"], Json(6));
  EXPECT_EQ(m["profile"], Json("theblock"));
  EXPECT_TRUE(m["tps"].isNull());
  EXPECT_EQ(host_.published["peers"]["total"], Json(3));

  const FakeHost::Metric* height = last("theblock_block_height");
  ASSERT_NE(height, nullptr);
  EXPECT_EQ(height->op, BB_METRIC_SET);
  EXPECT_EQ(height->value, 236);
  const FakeHost::Metric* tps = last("theblock_tps");
  ASSERT_NE(tps, nullptr);
  EXPECT_EQ(tps->op, BB_METRIC_REMOVE);
  const FakeHost::Metric* bytes = last("theblock_peer_bytes_sent_total");
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(bytes->kind, BB_METRIC_COUNTER);
  EXPECT_EQ(bytes->value, 0);  // first sample: nothing observed sent yet
  const FakeHost::Metric* out = last("theblock_network_bandwidth_bytes_per_second", "out");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->op, BB_METRIC_REMOVE);  // first sample

  EXPECT_EQ(host_.features.size(), 8u);
  EXPECT_EQ(host_.features["block_height"], 236);
  EXPECT_TRUE(std::isnan(host_.features["tps"]));
  EXPECT_EQ(host_.features["strength"], 6);
  bool logged = false;
  for (const auto& l : host_.logs) logged |= l.find("theblock") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(NetworkPluginTest, AFailedCallFailsTheCollectWithTheTransportStatus) {
  ASSERT_TRUE(create()) << error_;
  host_.answers["net.overlay_status"] = "TRANSPORT";
  host_.answers["net.peers"] = "TRANSPORT";
  int status = collect();
  EXPECT_EQ(status, BB_ERR_TRANSPORT);
  EXPECT_NE(error_.find("connection refused"), std::string::npos) << error_;
  EXPECT_EQ(host_.published.count("metrics"), 0u);
}

TEST_F(NetworkPluginTest, InvalidOptionsAreRefusedWithTheKeyToFix) {
  EXPECT_FALSE(create(Json{{"max_peers", 0}}));
  EXPECT_NE(error_.find("max_peers"), std::string::npos) << error_;
  error_.clear();
  EXPECT_FALSE(create(Json{{"tps_target", 0}}));
  EXPECT_NE(error_.find("tps_target"), std::string::npos) << error_;
  error_.clear();
  EXPECT_FALSE(create(Json{{"peers_weight", "thirty"}}));
  EXPECT_NE(error_.find("peers_weight"), std::string::npos) << error_;
}

}  // namespace
