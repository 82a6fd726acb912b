// viz::memory_report: every tensor the nodes of an MLP and a CNN step saved is listed, and the
// bytes it reports are what the graph really holds — measured here with the allocator's own
// count (memory_allocated before and after the graph is dropped) and by summing distinct
// storages; shared storages are counted once; activation checkpointing shows only the block's
// inputs; under detect_anomaly each tensor names the line that recorded it; to_dot colours
// nodes by saved bytes.
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/autograd/anomaly.hpp"
#include "xgrad/autograd/checkpoint.hpp"
#include "xgrad/nn/cnn.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/viz/graph.hpp"
#include "xgrad/viz/memory.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

Tensor labels_for(std::int64_t n) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::int64_t>(i % 10);
  return from_data(c.data(), {n});
}

// One training step's loss; the batch's handles die here, so only the graph holds it.
Tensor step_loss(nn::Module& model, std::int64_t n) {
  Tensor images = randn({n, 784});
  return cross_entropy(model(images), labels_for(n));
}

// The independent counts: the allocator's view (bytes freed when the graph goes) and the sum
// of the distinct storages the nodes' stores hold.
void check_totals(nn::Module& model, std::int64_t n, const std::string& first_weight) {
  Tensor loss = step_loss(model, n);
  const viz::MemoryReport r = viz::memory_report(loss);

  // Every saved tensor listed: as many entries as the nodes' stores hold defined tensors.
  const viz::Graph g = viz::collect_graph({loss});
  std::size_t held = 0;
  std::set<const Storage*> storages, params;
  std::int64_t distinct = 0;
  for (const autograd::Node* node : g.nodes)
    if (const TensorImpl* leaf = node->leaf()) params.insert(leaf->storage.get());
  for (const autograd::Node* node : g.nodes)
    for (const auto& sv : node->saved_variables()) {
      if (!sv.held_data().defined()) continue;
      ++held;
      if (storages.insert(sv.held_data().storage().get()).second)
        distinct += static_cast<std::int64_t>(sv.held_data().storage()->nbytes());
    }
  BOOST_TEST(held > 0u);
  BOOST_TEST(r.tensors.size() == held);
  BOOST_TEST(r.total_bytes == distinct);
  std::int64_t groups = 0;
  for (const auto& m : r.by_module) groups += m.bytes;
  BOOST_TEST(groups == r.total_bytes);
  std::int64_t ops = 0;
  for (const auto& o : r.by_op) ops += o.bytes;
  BOOST_TEST(ops == r.total_bytes);

  // The allocator: dropping the graph frees exactly its activations (the parameters stay with
  // the model) and the loss's own scalar, unless a node saved that.
  const Storage* loss_storage = loss.storage().get();
  const std::int64_t loss_bytes =
      storages.count(loss_storage) ? 0 : static_cast<std::int64_t>(loss_storage->nbytes());
  const std::int64_t with_graph = memory_allocated();
  loss = Tensor();
  const std::int64_t without = memory_allocated();
  BOOST_TEST(with_graph - without == r.activation_bytes() + loss_bytes);
  BOOST_TEST(r.activation_bytes() > 0);
  // The weights a layer saves: those whose op needs them for its input's gradient — every
  // weight but the first layer's (its input, the batch, needs none); biases never.
  std::int64_t param_bytes = 0;
  const auto named = model.named_parameters();
  for (std::size_t k = 0; k < named.size(); ++k) {
    const bool weight = named[k].first.find("weight") != std::string::npos;
    if (weight && named[k].first != first_weight)
      param_bytes += static_cast<std::int64_t>(named[k].second.storage()->nbytes());
  }
  BOOST_TEST(r.parameter_bytes == param_bytes);
}

const viz::SavedTensor* find(const viz::MemoryReport& r, const std::string& module,
                             const std::string& op, viz::SavedKind kind, const Shape& shape) {
  for (const auto& e : r.tensors)
    if (e.module == module && e.op == op && e.kind == kind && e.shape == shape) return &e;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(memory_report)

BOOST_AUTO_TEST_CASE(mlp_step_totals_are_the_bytes_the_graph_holds) {
  manual_seed(1);
  nn::MLP model({784, 256, 128, 10});
  check_totals(model, 16, "fc1.weight");

  Tensor loss = step_loss(model, 16);
  const viz::MemoryReport r = viz::memory_report(loss);
  // What a linear layer keeps: its input (the batch, an activation) and its weight.
  const auto* x = find(r, "fc1", "linear", viz::SavedKind::input, {16, 784});
  BOOST_REQUIRE(x);
  BOOST_TEST(x->bytes == 16 * 784 * 4);
  BOOST_TEST(x->counted);
  const auto* w = find(r, "fc2", "linear", viz::SavedKind::parameter, {128, 256});
  BOOST_REQUIRE(w);
  BOOST_TEST(w->storage_bytes == 128 * 256 * 4);
  // fc1's weight is not kept: the batch needs no gradient, so nothing needs the weight.
  BOOST_TEST(!find(r, "fc1", "linear", viz::SavedKind::parameter, {256, 784}));
  BOOST_REQUIRE(find(r, "fc2", "linear", viz::SavedKind::input, {16, 256}));
  BOOST_REQUIRE(find(r, "fc3", "linear", viz::SavedKind::parameter, {10, 128}));
  // The modules are named, the text lists them and the totals.
  std::set<std::string> modules;
  for (const auto& m : r.by_module) modules.insert(m.name);
  BOOST_TEST((modules.count("fc1") && modules.count("fc2") && modules.count("fc3")));
  const std::string text = r.to_string();
  BOOST_TEST(text.find("fc1") != std::string::npos);
  BOOST_TEST(text.find("[16,784] float32") != std::string::npos);
  BOOST_TEST(text.find(viz::format_bytes(r.total_bytes)) != std::string::npos);

  // After backward the saved tensors are gone: released, nothing held.
  loss.backward();
  const viz::MemoryReport after = viz::memory_report(loss);
  BOOST_TEST(after.total_bytes == 0);
  BOOST_TEST(after.released_nodes > 0u);
}

BOOST_AUTO_TEST_CASE(cnn_step_totals_are_the_bytes_the_graph_holds) {
  manual_seed(2);
  nn::CNN model;
  check_totals(model, 4, "conv1.weight");
  Tensor loss = step_loss(model, 4);
  const viz::MemoryReport r = viz::memory_report(loss);
  BOOST_REQUIRE(find(r, "conv1", "conv2d", viz::SavedKind::input, {4, 1, 28, 28}));
  BOOST_REQUIRE(find(r, "conv2", "conv2d", viz::SavedKind::parameter, {32, 16, 3, 3}));
}

BOOST_AUTO_TEST_CASE(shared_storage_is_counted_once) {
  // a is saved by both products (each needs it for w's gradient), once directly and once
  // through a view: one storage, counted once. w is not saved (a needs no gradient).
  Tensor w = randn({5, 5}).requires_grad_();
  Tensor a = randn({5, 5});
  Tensor y = (a * w).sum() + (a.t() * w).sum();
  const viz::MemoryReport r = viz::memory_report(y);
  std::size_t a_entries = 0, counted = 0;
  for (const auto& e : r.tensors)
    if (e.kind == viz::SavedKind::input && e.shape == Shape{5, 5}) {
      ++a_entries;
      counted += e.counted;
      if (!e.counted) {
        BOOST_TEST(e.shared_with >= 0);
        BOOST_TEST(r.tensors[static_cast<std::size_t>(e.shared_with)].counted);
      }
    }
  BOOST_TEST(a_entries == 2u);
  BOOST_TEST(counted == 1u);
  BOOST_TEST(r.activation_bytes() == 25 * 4);
  BOOST_TEST(r.parameter_bytes == 0);
  BOOST_TEST(r.total_bytes == 25 * 4);
}

BOOST_AUTO_TEST_CASE(checkpoint_keeps_only_the_block_inputs) {
  manual_seed(3);
  nn::Linear l1(32, 64), l2(64, 32);
  Tensor x = randn({8, 32}).requires_grad_();
  auto block = [&](const std::vector<Tensor>& in) { return l2(relu(l1(in[0]))); };
  Tensor plain = block({x}).sum();
  Tensor ckpt = checkpoint(block, {x}).sum();
  const viz::MemoryReport rp = viz::memory_report(plain), rc = viz::memory_report(ckpt);
  std::size_t in_checkpoint = 0;
  for (const auto& e : rc.tensors) {
    if (e.op != "checkpoint") continue;
    ++in_checkpoint;
    BOOST_TEST((e.shape == Shape{8, 32}));
  }
  BOOST_TEST(in_checkpoint == 1u);  // x, and nothing of the block
  // Without checkpoint: x (a leaf: parameter-like, kept anyway), the relu's input or output
  // [8,64], fc2's input [8,64]; with it: none of the block's activations.
  BOOST_TEST(rp.activation_bytes() >= 8 * 64 * 4);
  BOOST_TEST(rc.activation_bytes() == 0);
  BOOST_TEST(rc.total_bytes < rp.total_bytes);
}

BOOST_AUTO_TEST_CASE(anomaly_mode_names_the_recording_line) {
  autograd::detect_anomaly guard;
  Tensor w = randn({3, 3}).requires_grad_();
  Tensor x = randn({2, 3});
  const int line = __LINE__ + 1;
  Tensor y = tanh(matmul(x, w)).sum();
  const viz::MemoryReport r = viz::memory_report(y);
  bool found = false;
  for (const auto& e : r.tensors)
    if (e.op == "tanh") {
      found = true;
      BOOST_TEST(e.source.find("memory_test.cpp:" + std::to_string(line)) != std::string::npos,
                 e.source);
    }
  BOOST_TEST(found);
  BOOST_TEST(r.to_string().find("memory_test.cpp:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(dot_colours_nodes_by_saved_bytes) {
  manual_seed(4);
  nn::MLP model({784, 256, 128, 10});
  Tensor loss = step_loss(model, 8);
  viz::DotOptions o;
  o.memory = true;
  const std::string dot = viz::to_dot({loss}, o);
  BOOST_TEST(dot.find("saves 24.5 KiB") != std::string::npos);  // fc1's input, [8,784] float32
  BOOST_TEST(dot.find("saved for backward") != std::string::npos);
  const std::string plain = viz::to_dot({loss});
  BOOST_TEST(plain.find("saves ") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(format_bytes_uses_binary_units) {
  BOOST_TEST(viz::format_bytes(512) == "512 B");
  BOOST_TEST(viz::format_bytes(25088) == "24.5 KiB");
  BOOST_TEST(viz::format_bytes(3 * 1024 * 1024) == "3 MiB");
}

BOOST_AUTO_TEST_SUITE_END()
