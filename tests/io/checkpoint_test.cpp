// Training checkpoints (io::save_checkpoint / load_checkpoint): the whole training state —
// parameters, optimizer, scheduler, data loader position, random generator — comes back so
// that training continues exactly; mismatches are refused with a clear error and change
// nothing.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "test_util.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
#include "xgrad/optim/sgd.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
namespace fs = std::filesystem;
namespace optim = xgrad::optim;

namespace {

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("xgrad_ckpt_" + std::to_string(::getpid()) + "_" + name);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(),
                     a.numel() * element_size(a.dtype())) == 0;
}

// A small classification problem: 22 samples of 4 features, 3 classes.
struct Problem {
  data::TensorDataset ds;
  Problem() : ds(make_inputs(), make_labels()) {}
  static Tensor make_inputs() {
    manual_seed(7);
    return randn({22, 4});
  }
  static Tensor make_labels() {
    std::vector<std::int64_t> l(22);
    for (std::size_t i = 0; i < l.size(); ++i) l[i] = static_cast<std::int64_t>(i % 3);
    return from_data(l.data(), {22});
  }
};

// Model, optimizer, scheduler and loader of one training run.
struct Trainer {
  nn::MLP model;
  optim::Adam opt;
  optim::StepLR sched;
  data::DataLoader loader;
  Trainer(const data::Dataset& ds, std::uint64_t init_seed)
      : model((manual_seed(init_seed), std::vector<std::int64_t>{4, 8, 3})),
        opt(model.parameters(), optim::AdamOptions(1e-2)),
        sched(opt, 2, 0.5),
        loader(ds, {.batch_size = 4, .shuffle = true, .seed = 11}) {}
  void train_step(const data::Batch& b) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model(b.inputs), b.labels);
    loss.backward();
    opt.step();
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(training_resumes_exactly_mid_epoch) {
  Problem pr;
  const fs::path path = temp("mid_epoch.safetensors");
  // Run A: 3 epochs of 6 batches; checkpoint after step 8 (batch 2 of epoch 1), then carry on.
  Trainer a(pr.ds, 1);
  int step = 0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (auto& batch : a.loader) {
      a.train_step(batch);
      if (++step == 8)
        io::save_checkpoint(
            path, a.model, a.opt,
            {.scheduler = &a.sched, .loader = &a.loader, .metadata = {{"step", "8"}}});
    }
    a.sched.step();
  }
  const Tensor a_draw = randn({5});

  // Run B: another initialisation and generator state; restored from the file, it finishes the
  // interrupted epoch and the last one.
  Trainer b(pr.ds, 999);
  manual_seed(12345);
  auto meta =
      io::load_checkpoint(path, b.model, b.opt, {.scheduler = &b.sched, .loader = &b.loader});
  BOOST_CHECK_EQUAL(meta.at("step"), "8");
  BOOST_CHECK(b.loader.state() == (data::DataLoaderState{11, 1, 2}));
  for (int epoch = 1; epoch < 3; ++epoch) {
    for (auto& batch : b.loader) b.train_step(batch);
    b.sched.step();
  }
  const Tensor b_draw = randn({5});

  const auto pa = a.model.named_parameters(), pb = b.model.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    BOOST_CHECK_MESSAGE(same_bits(pa[i].second, pb[i].second), pa[i].first << " differs");
  BOOST_CHECK(a.sched.state_dict() == b.sched.state_dict());
  BOOST_CHECK(a.opt.state_dict().scalars == b.opt.state_dict().scalars);
  BOOST_CHECK(a.loader.state() == b.loader.state());
  BOOST_CHECK(same_bits(a_draw, b_draw));  // the default generator was restored too
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(file_layout_uses_state_dict_names) {
  Problem pr;
  Trainer t(pr.ds, 1);
  for (auto& batch : t.loader) t.train_step(batch);
  const fs::path path = temp("layout.safetensors");
  io::save_checkpoint(path, t.model, t.opt, {.scheduler = &t.sched, .loader = &t.loader});
  auto [tensors, meta] = io::load_safetensors(path);
  for (const char* k : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                        "optimizer.state.0.exp_avg", "optimizer.state.3.exp_avg_sq"})
    BOOST_CHECK_MESSAGE(tensors.count(k), "no tensor " << k);
  BOOST_CHECK_EQUAL(tensors.size(), 4u + 4u * 2u);
  BOOST_CHECK_EQUAL(meta.at("xgrad.checkpoint"), "1");
  BOOST_CHECK_EQUAL(meta.at("optimizer.type"), "Adam");
  BOOST_CHECK_EQUAL(meta.at("optimizer.state.2.step"), "6");
  BOOST_CHECK_EQUAL(meta.at("optimizer.param_groups.0.initial_lr"), "0.01");
  BOOST_CHECK_EQUAL(meta.at("loader.seed"), "11");
  BOOST_CHECK_EQUAL(meta.at("loader.epoch"), "1");
  BOOST_CHECK_EQUAL(meta.at("loader.batch"), "0");
  BOOST_CHECK_EQUAL(meta.at("scheduler.type"), "StepLR");
  BOOST_CHECK_EQUAL(meta.at("scheduler.step_size"), "2");
  BOOST_CHECK_EQUAL(meta.at("scheduler.gamma"), "0.5");
  BOOST_CHECK(meta.at("rng.default_generator").size() > 1000);  // 312 words of state
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(mismatches_are_refused_and_change_nothing) {
  Problem pr;
  Trainer t(pr.ds, 1);
  for (auto& batch : t.loader) t.train_step(batch);
  const fs::path path = temp("mismatch.safetensors");
  const std::string p = path.string();
  io::save_checkpoint(path, t.model, t.opt, {.scheduler = &t.sched, .loader = &t.loader});

  Trainer u(pr.ds, 2);
  const Tensor before = u.model.parameters()[0].detach().clone();
  const auto opt_before = u.opt.state_dict();
  auto unchanged = [&] {
    BOOST_CHECK(same_bits(u.model.parameters()[0], before));
    BOOST_CHECK(u.opt.state_dict().scalars == opt_before.scalars);
    BOOST_CHECK_EQUAL(u.sched.last_epoch(), 0);
  };

  {  // another architecture
    manual_seed(3);
    nn::MLP wider({4, 9, 3});
    optim::Adam opt(wider.parameters(), optim::AdamOptions(1e-2));
    expect_error([&] { io::load_checkpoint(p, wider, opt); }, {p, "fc1.weight", "[8,4]", "[9,4]"});
    nn::MLP deeper({4, 8, 3, 3});
    optim::Adam opt2(deeper.parameters(), optim::AdamOptions(1e-2));
    expect_error([&] { io::load_checkpoint(p, deeper, opt2); }, {p, "no parameter 'fc3.weight'"});
    nn::MLP shallower({4, 3});
    optim::Adam opt3(shallower.parameters(), optim::AdamOptions(1e-2));
    expect_error([&] { io::load_checkpoint(p, shallower, opt3); },
                 {p, "fc1.weight"});  // [8,4] in the file, [3,4] in the model
  }
  {  // another optimizer
    optim::SGD sgd(u.model.parameters(), optim::SGDOptions(0.1));
    expect_error([&] { io::load_checkpoint(p, u.model, sgd); }, {p, "Adam optimizer", "SGD"});
  }
  {  // another scheduler
    optim::ExponentialLR exp(u.opt, 0.9);
    expect_error([&] { io::load_checkpoint(p, u.model, u.opt, {.scheduler = &exp}); },
                 {p, "StepLR scheduler", "ExponentialLR"});
  }
  {  // a loader over another dataset size / batch size
    data::DataLoader other(pr.ds, {.batch_size = 22});
    t.loader.set_state({11, 1, 4});
    io::save_checkpoint(temp("mid.safetensors"), t.model, t.opt, {.loader = &t.loader});
    expect_error(
        [&] { io::load_checkpoint(temp("mid.safetensors"), u.model, u.opt, {.loader = &other}); },
        {"mid.safetensors", "batch 4", "1 batches"});
  }
  unchanged();

  // Parts asked for but not in the file.
  const fs::path bare = temp("bare.safetensors");
  io::save_checkpoint(bare, t.model, t.opt, {.rng = false});
  expect_error(
      [&] { io::load_checkpoint(bare, u.model, u.opt, {.scheduler = &u.sched, .rng = false}); },
      {"bare.safetensors", "no scheduler state"});
  expect_error(
      [&] { io::load_checkpoint(bare, u.model, u.opt, {.loader = &u.loader, .rng = false}); },
      {"bare.safetensors", "no data loader position"});
  expect_error([&] { io::load_checkpoint(bare, u.model, u.opt); },
               {"bare.safetensors", "no random generator state"});
  unchanged();
  // ... and what is there loads.
  io::load_checkpoint(bare, u.model, u.opt, {.rng = false});
  BOOST_CHECK(same_bits(u.model.parameters()[0], t.model.parameters()[0]));

  // Not a checkpoint; missing file; reserved metadata on save.
  const fs::path plain = temp("plain.safetensors");
  io::save_safetensors(plain, {{"fc1.weight", ones({8, 4})}});
  expect_error([&] { io::load_checkpoint(plain, u.model, u.opt); },
               {"plain.safetensors", "not an xgrad checkpoint"});
  expect_error([&] { io::load_checkpoint(temp("missing").string(), u.model, u.opt); },
               {"missing", "No such file"});
  expect_error(
      [&] {
        io::save_checkpoint(temp("x").string(), t.model, t.opt, {.metadata = {{"rng.x", "1"}}});
      },
      {"save_checkpoint", "'rng.x'", "reserved"});
  for (const fs::path& f : {path, bare, plain, temp("mid.safetensors")}) fs::remove(f);
}

BOOST_AUTO_TEST_CASE(plateau_state_with_infinite_best_round_trips) {
  Tensor w = zeros({2}, Dtype::float64).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::ReduceLROnPlateau plateau(opt, {.patience = 3});  // best = +inf before any step
  const fs::path path = temp("plateau.safetensors");
  io::save_checkpoint(path, {{"w", w}}, opt, {.scheduler = &plateau, .rng = false});
  BOOST_CHECK_EQUAL(io::load_safetensors_metadata(path).at("scheduler.best"), "inf");
  optim::ReduceLROnPlateau other(opt, {.mode = "max", .patience = 7});
  io::load_checkpoint(path, {{"w", w}}, opt, {.scheduler = &other, .rng = false});
  BOOST_CHECK(other.state_dict() == plateau.state_dict());
  BOOST_CHECK_EQUAL(other.best(), std::numeric_limits<double>::infinity());
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(optimizer_type_names) {
  Tensor w = zeros({2}).requires_grad_();
  optim::SGD sgd({w}, optim::SGDOptions(0.1));
  BOOST_CHECK_EQUAL(io::optimizer_type_name(sgd), "SGD");
  Tensor v = zeros({2}).requires_grad_();
  optim::Adam adam({v}, optim::AdamOptions());
  BOOST_CHECK_EQUAL(io::optimizer_type_name(adam), "Adam");
}

BOOST_AUTO_TEST_SUITE_END()
