// Recurrent layers: the cells RNNCell, LSTMCell and GRUCell (one time step), and LSTM (a
// single-layer LSTM over a whole sequence, unrolled on the tape). Gate layouts, equations,
// parameter shapes and initialisation are torch's, so torch weights can be copied in as they
// are. See docs/rnn.md.
//
// Shapes (I = input_size, H = hidden_size, N = batch, T = time steps, G = gates: 1 for RNNCell,
// 4 for LSTM, 3 for GRU): weight_ih [G·H, I], weight_hh [G·H, H], bias_ih [G·H],
// bias_hh [G·H]; every parameter starts from U(−1/√H, 1/√H). A cell takes x [N, I] and
// states [N, H] (or, unbatched, x [I] and states [H]); an undefined state means zeros.
// Shape mismatches throw xgrad::Error naming the module and the shapes, e.g.
// "LSTMCell: input of shape [5,4] does not match input_size 3".
//
// Module::operator()(x) starts from a zero state: a cell runs one step and returns h', LSTM runs
// the whole sequence and returns the outputs [T, N, H]. Calls with a state are the public
// forward(...) overloads below.
#pragma once

#include <cstdint>
#include <string>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

enum class RNNNonlinearity { tanh, relu };

struct RNNCellOptions {
  bool bias = true;
  RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;
  Dtype dtype = default_dtype();
};

/// Options of LSTMCell, GRUCell and LSTM.
struct RecurrentOptions {
  bool bias = true;
  Dtype dtype = default_dtype();
  /// LSTM only: the sequence is [N, T, I] (and the outputs [N, T, H]) instead of [T, N, I].
  bool batch_first = false;
};

/// The hidden and cell state of an LSTM (each [N, H]); structured bindings work:
/// `auto [h, c] = cell.forward(x, h0, c0);`.
struct LSTMState {
  Tensor h, c;
};

/// What LSTM::forward returns: the hidden state of every step and the final state.
struct LSTMOutput {
  Tensor output;  // [T, N, H] ([N, T, H] with batch_first; [T, H] unbatched)
  Tensor h, c;    // final state, [N, H] ([H] unbatched)
};

/// Parameters and shape checks shared by the cells. Not used directly.
class RNNCellBase : public Module {
 public:
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;  // biases undefined when options.bias = false
  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_size_; }

 protected:
  RNNCellBase(std::int64_t input_size, std::int64_t hidden_size, std::int64_t gates, bool bias,
              Dtype dtype, const char* type);
  /// Checks x ([N, I] or [I]) and returns it as [N, I].
  Tensor batched_input(const Tensor& x) const;
  /// Checks a state against the batched input ([N, H], or [H] for an unbatched x) and returns
  /// it as [N, H]; an undefined state gives zeros. `what` names it in errors ("h", "c").
  Tensor batched_state(const Tensor& s, const Tensor& x, const char* what) const;
  /// Undoes batched_input's unsqueeze for an unbatched call.
  static Tensor unbatched_like(const Tensor& s, const Tensor& x);

 private:
  std::int64_t input_size_, hidden_size_;
  const char* type_;
};

/// Elman RNN cell (torch.nn.RNNCell): h' = act(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh), act = tanh
/// (default) or relu.
class RNNCell : public RNNCellBase {
 public:
  RNNCell(std::int64_t input_size, std::int64_t hidden_size, RNNCellOptions options = {});
  /// One step: x [N, I], h [N, H] (undefined = zeros) -> h' [N, H].
  Tensor forward(const Tensor& x, const Tensor& h);
  std::string type_name() const override { return "RNNCell"; }

 protected:
  /// One step from h = 0.
  Tensor forward(const Tensor& x) override;

 private:
  RNNNonlinearity nonlinearity_;
};

/// LSTM cell (torch.nn.LSTMCell; Hochreiter & Schmidhuber 1997 with a forget gate). The G = 4
/// gate blocks of the weights are, in order, input i, forget f, cell g, output o:
///   [i, f, g, o] = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh
///   i, f, o = σ(·);  g = tanh(·)
///   c' = f ⊙ c + i ⊙ g;   h' = o ⊙ tanh(c')
class LSTMCell : public RNNCellBase {
 public:
  LSTMCell(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
  /// One step: x [N, I], h and c [N, H] (undefined = zeros) -> (h', c'), each [N, H].
  LSTMState forward(const Tensor& x, const Tensor& h, const Tensor& c);
  std::string type_name() const override { return "LSTMCell"; }

 protected:
  /// One step from h = c = 0; returns h'.
  Tensor forward(const Tensor& x) override;
};

/// GRU cell (torch.nn.GRUCell; Cho et al. 2014). The G = 3 gate blocks are reset r, update z,
/// new n:
///   r = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr);   z = σ(x·W_izᵀ + b_iz + h·W_hzᵀ + b_hz)
///   n = tanh(x·W_inᵀ + b_in + r ⊙ (h·W_hnᵀ + b_hn))
///   h' = (1 − z) ⊙ n + z ⊙ h
class GRUCell : public RNNCellBase {
 public:
  GRUCell(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
  /// One step: x [N, I], h [N, H] (undefined = zeros) -> h' [N, H].
  Tensor forward(const Tensor& x, const Tensor& h);
  std::string type_name() const override { return "GRUCell"; }

 protected:
  /// One step from h = 0.
  Tensor forward(const Tensor& x) override;
};

/// A single-layer LSTM over a sequence (torch.nn.LSTM with num_layers = 1): the LSTMCell
/// equations applied at t = 0..T−1, unrolled on the tape, so backward is backpropagation
/// through time. The input projection x·W_ihᵀ + b_ih is one matrix product for all steps.
/// Parameters are named as torch names them: weight_ih_l0 [4H, I], weight_hh_l0 [4H, H],
/// bias_ih_l0 [4H], bias_hh_l0 [4H]. Backward uses no recursion: sequences of 10,000+ steps
/// are fine (memory grows linearly with T).
class LSTM : public Module {
 public:
  LSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;  // registered as weight_ih_l0, ...

  /// x [T, N, I] ([N, T, I] with batch_first; [T, I] unbatched), h0 and c0 [N, H] ([H]
  /// unbatched; undefined = zeros) -> outputs [T, N, H] (h at every step) and the final (h, c)
  /// [N, H]. Unlike torch, the final state has no leading num_layers axis. Throws for T = 0.
  LSTMOutput forward(const Tensor& x, const Tensor& h0, const Tensor& c0);
  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_size_; }
  std::string type_name() const override { return "LSTM"; }

 protected:
  /// forward(x, zeros, zeros).output.
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t input_size_, hidden_size_;
  bool batch_first_;
};

}  // namespace xgrad::nn
