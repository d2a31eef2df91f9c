/*
 * mbx — target matching and MultiBox / focal loss, forward and backward,
 * for anchor-based object detectors (SSD, RetinaNet and kin).
 *
 * This is the library's only public header (plus dlpack.h). It is C99 and
 * usable from C and C++. The semantics are those of docs/SPEC.md, summarised
 * in each function's comment. Items marked "@since 0.2" need libmbx 0.2 or
 * newer (check mbx_version_number() when loading the library dynamically).
 *
 * ABI contract
 *  - Every entry point returns an ::mbx_status_t. On any status other than
 *    MBX_STATUS_OK nothing has been written to any output tensor (every
 *    argument and value is checked before the first write; only an
 *    MBX_STATUS_OUT_OF_MEMORY or MBX_STATUS_DEVICE_ERROR raised while
 *    computing leaves the outputs unspecified), and mbx_last_error() returns
 *    a message naming the argument (and the image / box / prior index where
 *    relevant) and what was expected.
 *  - No C++ exception and no abort ever crosses this boundary.
 *  - Enum values are pinned and never renumbered. Option structs begin with
 *    `struct_size`; fields are only ever appended. A caller compiled against
 *    an older header passes its smaller struct_size and the library fills the
 *    newer fields with their defaults.
 *  - Opaque handles; mbx_context_destroy(NULL) is a no-op.
 *
 * Dimensions used in the shape comments:
 *   B images, P priors (anchors), C logit columns, G GT rows per image
 *   (padded), K object classes (K = C-1 for SOFTMAX_CE, K = C for SIGMOID_FOCAL).
 *   B >= 1 and P >= 1 (an empty batch or prior set is an INVALID_ARGUMENT);
 *   G may be 0.
 *
 * Tensors are DLPack DLTensors, borrowed for the duration of the call only.
 * Accepted: lanes == 1, byte_offset honoured, strides NULL or compact
 * row-major (in elements), data non-NULL unless the tensor has zero elements,
 * data aligned to its element size. All tensors of one call live on the same
 * device (kDLCPU, or kDLCUDA / kDLCUDAHost when built with CUDA). Output
 * tensors must not overlap any input tensor.
 *
 * Threads: every function is safe to call concurrently from several threads
 * with separate output tensors. One mbx_context_t must be used by one thread
 * at a time; a second concurrent call on the same context is detected and
 * refused with MBX_STATUS_CONTEXT_BUSY (nothing is computed or written).
 */
#ifndef MBX_MBX_H_
#define MBX_MBX_H_

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

/* MBX_VERSION_MAJOR, _MINOR, _PATCH and MBX_VERSION_NUMBER (= MAJOR * 10000 +
 * MINOR * 100 + PATCH), generated from the project's one version number. */
#include "mbx/mbx_version.h"

#if defined(_WIN32)
#if defined(MBX_BUILDING_LIBRARY)
#define MBX_API __declspec(dllexport)
#else
#define MBX_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define MBX_API __attribute__((visibility("default")))
#else
#define MBX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Status and errors                                                         */
/* ------------------------------------------------------------------------ */

/** Result of every entry point. Values are pinned (never reused). */
typedef enum mbx_status_t {
  /** Success; outputs written. */
  MBX_STATUS_OK = 0,
  /** A bad argument or bad input data (docs/SPEC.md §7); see mbx_last_error(). */
  MBX_STATUS_INVALID_ARGUMENT = 1,
  /** A valid request this build or path cannot serve (e.g. a dtype, a path). */
  MBX_STATUS_UNSUPPORTED = 2,
  /** Host or device memory could not be allocated. */
  MBX_STATUS_OUT_OF_MEMORY = 3,
  /** A CUDA tensor or the CUDA path was requested but no usable device/driver. */
  MBX_STATUS_NO_DEVICE = 4,
  /** A CUDA runtime call or kernel launch failed; message has the CUDA error. */
  MBX_STATUS_DEVICE_ERROR = 5,
  /** The context is in use by another thread right now. */
  MBX_STATUS_CONTEXT_BUSY = 6,
  /** A bug in mbx (an unexpected internal exception). Please report it. */
  MBX_STATUS_INTERNAL_ERROR = 7
} mbx_status_t;

/** Static, human-readable name of a status ("MBX_STATUS_OK", ...). */
MBX_API const char* mbx_status_string(mbx_status_t status);

/**
 * The message of the last failed call on this thread ("" if none). The
 * pointer stays valid until the next mbx call on the same thread. Messages
 * are never printed by the library.
 */
MBX_API const char* mbx_last_error(void);

/* ------------------------------------------------------------------------ */
/* Version and capabilities                                                 */
/* ------------------------------------------------------------------------ */

/** Runtime version string "MAJOR.MINOR.PATCH". */
MBX_API const char* mbx_version(void);
/** Runtime MBX_VERSION_NUMBER (compare with the macro to detect mismatches). */
MBX_API int mbx_version_number(void);

/** Computation paths. */
typedef enum mbx_path_t {
  /** CUDA when the tensors are on a CUDA device, else the fast CPU path. */
  MBX_PATH_AUTO = 0,
  /** Plain scalar C++ (float64, single thread): the in-tree reference. */
  MBX_PATH_CPU_SCALAR = 1,
  /** oneTBB + xsimd (float32 math, float64 sums). The default on the CPU. */
  MBX_PATH_CPU = 2,
  /** CUDA kernels on the context's stream. */
  MBX_PATH_CUDA = 3
} mbx_path_t;

/** 1 if the path can run in this process (CUDA: built with CUDA and a device
 *  + driver present), else 0. MBX_PATH_AUTO is always available. */
MBX_API int mbx_path_available(mbx_path_t path);
/** Static name of a path: "auto", "cpu-scalar", "cpu", "cuda" (NULL if bad). */
MBX_API const char* mbx_path_name(mbx_path_t path);
/** 1 if built with CUDA and at least one CUDA device is usable, else 0. */
MBX_API int mbx_cuda_available(void);

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

/** Presets reproducing the anchor implementations (docs/SPEC.md §5). */
typedef enum mbx_preset_t {
  /** amdegroot/ssd.pytorch MultiBoxLoss. */
  MBX_PRESET_SSD_PYTORCH = 0,
  /** torchvision 0.14 SSD compute_loss. */
  MBX_PRESET_TORCHVISION_SSD = 1,
  /** yhenon/pytorch-retinanet FocalLoss. */
  MBX_PRESET_YHENON_RETINANET = 2,
  /** torchvision 0.14 RetinaNet compute_loss. */
  MBX_PRESET_TORCHVISION_RETINANET = 3,
  /** weiliu89/caffe SSD MultiBoxLoss as ssd_pascal.py configures it. @since 0.2 */
  MBX_PRESET_CAFFE_SSD = 4,
  /** sgrvinod a-PyTorch-Tutorial-to-Object-Detection MultiBoxLoss. @since 0.2 */
  MBX_PRESET_SGRVINOD_SSD = 5
} mbx_preset_t;

typedef enum mbx_prior_format_t {
  MBX_PRIOR_CENTER_SIZE = 0, /**< (cx, cy, w, h) */
  MBX_PRIOR_CORNERS = 1      /**< (x1, y1, x2, y2) */
} mbx_prior_format_t;

typedef enum mbx_force_match_t {
  MBX_FORCE_MATCH_NONE = 0,
  /** SSD: each GT's best prior becomes positive (highest GT wins a shared prior). */
  MBX_FORCE_MATCH_BEST_PRIOR_PER_GT = 1,
  /** torchvision RetinaNet: every prior tying a GT's max IoU becomes positive. */
  MBX_FORCE_MATCH_LOW_QUALITY = 2,
  /** Caffe SSD: greedy bipartite matching first (the globally largest IoU
   *  pair, then the next among unused priors and GTs; ties: lower prior,
   *  then lower GT), every GT gets a distinct prior. @since 0.2 */
  MBX_FORCE_MATCH_BIPARTITE = 3
} mbx_force_match_t;

typedef enum mbx_loc_loss_t {
  MBX_LOC_LOSS_SMOOTH_L1 = 0,
  MBX_LOC_LOSS_L1 = 1,
  /** 0.5 d^2 (Caffe's EuclideanLoss). @since 0.2 */
  MBX_LOC_LOSS_L2 = 2,
  /** 1 - GIoU of the decoded prediction and the GT (torchvision.ops
   *  generalized_box_iou_loss, eps 1e-7). @since 0.3 */
  MBX_LOC_LOSS_GIOU = 3,
  /** 1 - DIoU (torchvision.ops distance_box_iou_loss). @since 0.3 */
  MBX_LOC_LOSS_DIOU = 4,
  /** 1 - CIoU (torchvision.ops complete_box_iou_loss). @since 0.3 */
  MBX_LOC_LOSS_CIOU = 5
} mbx_loc_loss_t;

typedef enum mbx_conf_loss_t {
  /** Softmax cross-entropy with hard negative mining (SSD). */
  MBX_CONF_LOSS_SOFTMAX_CE = 0,
  /** Sigmoid focal loss (RetinaNet). */
  MBX_CONF_LOSS_SIGMOID_FOCAL = 1,
  /** Per-class sigmoid cross-entropy over all C columns against the one-hot
   *  target (column 0 background), with mining (Caffe LOGISTIC). @since 0.2 */
  MBX_CONF_LOSS_LOGISTIC = 2
} mbx_conf_loss_t;

typedef enum mbx_normalization_t {
  MBX_NORM_TOTAL_POSITIVES = 0, /**< sums / max(1, total positives) */
  MBX_NORM_PER_IMAGE = 1,       /**< (1/B) sum_i term_i / max(1, num_pos_i) */
  MBX_NORM_NONE = 2,            /**< plain sums */
  MBX_NORM_EXTERNAL = 3,        /**< sums / external_norm */
  MBX_NORM_BATCH_SIZE = 4,      /**< sums / B. @since 0.2 */
  MBX_NORM_FULL = 5             /**< sums / (B P). @since 0.2 */
} mbx_normalization_t;

typedef enum mbx_neg_overflow_t {
  /** Spec: when k exceeds the negatives, the spare slots stay empty. */
  MBX_NEG_OVERFLOW_EXCLUDE = 0,
  /** torchvision SSD's literal behaviour: spare slots count positives again
   *  (lowest prior index first). */
  MBX_NEG_OVERFLOW_DOUBLE_COUNT_POSITIVES = 1
} mbx_neg_overflow_t;

typedef enum mbx_invalid_gt_t {
  /** A valid GT row (index < gt_counts[b]) with a non-finite coordinate or
   *  x2 <= x1 or y2 <= y1 is an error. */
  MBX_INVALID_GT_ERROR = 0,
  /** Such rows are skipped (treated like padding). Labels are still checked. */
  MBX_INVALID_GT_SKIP = 1
} mbx_invalid_gt_t;

/** @since 0.2 */
typedef enum mbx_mining_t {
  /** neg_pos_ratio hard negatives per positive (SSD). */
  MBX_MINING_MAX_NEGATIVE = 0,
  /** Caffe HARD_EXAMPLE: every prior ranked by its conf + loc loss (after
   *  optional NMS), the top mining_sample_size kept; positives not kept are
   *  dropped from the loss. */
  MBX_MINING_HARD_EXAMPLE = 1
} mbx_mining_t;

/** Caffe's code_type. @since 0.2 */
typedef enum mbx_box_coding_t {
  MBX_BOX_CODING_CENTER_SIZE = 0, /**< SSD centre offsets and log sizes */
  MBX_BOX_CODING_CORNER = 1,      /**< corner differences */
  MBX_BOX_CODING_CORNER_SIZE = 2  /**< corner differences / prior size */
} mbx_box_coding_t;

/** Which priors become positive. @since 0.3 */
typedef enum mbx_assigner_t {
  /** IoU thresholds plus force_match (every system before ATSS). */
  MBX_ASSIGNER_MAX_IOU = 0,
  /** Adaptive Training Sample Selection (mmdetection's ATSSAssigner):
   *  atss_topk nearest priors per GT and pyramid level (prior_levels),
   *  IoU threshold mean + std of those, centre inside the GT. */
  MBX_ASSIGNER_ATSS = 1
} mbx_assigner_t;

/**
 * Every option of docs/SPEC.md. Initialise with mbx_options_init(), then
 * change fields (or use mbx_options_set() with the option's name). Integer
 * fields hold the enum values above; booleans are 0/1. Each field's name is
 * its option name; mbx_option_count() / mbx_option_name() list them at run
 * time (with their type, choices and one-line doc), in field order.
 */
typedef struct mbx_options_t {
  size_t struct_size;        /**< sizeof(mbx_options_t) of the caller's header */
  int32_t prior_format;      /**< mbx_prior_format_t */
  int32_t force_match;       /**< mbx_force_match_t */
  double pos_threshold;      /**< positive if best IoU >= this; in [0,1] */
  double neg_threshold;      /**< negative if best IoU < this; in [0, pos] */
  double variances[4];       /**< encoding divisors, each > 0 */
  double encode_min_gt_wh;   /**< > 0: GT w,h clamped to >= this in the logs; 0 off */
  int32_t loc_loss;          /**< mbx_loc_loss_t */
  int32_t conf_loss;         /**< mbx_conf_loss_t */
  double smooth_l1_beta;     /**< >= 0; 0 means L1 */
  double neg_pos_ratio;      /**< SOFTMAX_CE mining ratio; <= 0 uses every negative */
  int32_t clamp_num_neg;     /**< 1: num_neg = min(num_neg, P-1) (ssd.pytorch) */
  int32_t neg_overflow;      /**< mbx_neg_overflow_t */
  double focal_alpha;        /**< SIGMOID_FOCAL alpha, in [0,1] */
  double focal_gamma;        /**< SIGMOID_FOCAL gamma, >= 0 */
  int32_t normalization;     /**< mbx_normalization_t */
  int32_t loc_average_coords;/**< loc term also / 4 (every normalization) */
  double external_norm;      /**< EXTERNAL divisor, > 0 */
  int32_t invalid_gt;        /**< mbx_invalid_gt_t */
  int32_t reserved0;         /**< must be 0 */
  int32_t mining;            /**< mbx_mining_t; default MAX_NEGATIVE. @since 0.2 */
  int32_t mining_sample_size;/**< HARD_EXAMPLE kept per image, >= 1; default 64. @since 0.2 */
  double mining_nms_threshold; /**< HARD_EXAMPLE NMS IoU, <= 1; <= 0 no NMS; default 0. @since 0.2 */
  int32_t box_coding;        /**< mbx_box_coding_t; default CENTER_SIZE. @since 0.2 */
  int32_t encode_variance_in_target; /**< 1: Caffe's flag; default 0. @since 0.2 */
  int32_t assigner;          /**< mbx_assigner_t; default MAX_IOU. @since 0.3 */
  int32_t atss_topk;         /**< ATSS candidates per GT and level, >= 1; default 9. @since 0.3 */
  double ignore_iof_threshold; /**< a prior whose intersection with an ignore region (gt_flags
                                    bit 0) over its own area is > this is ignored; <= 0 off;
                                    default 0.5. @since 0.3 */
} mbx_options_t;

/**
 * Fill @p opts with the preset's values (docs/SPEC.md §5) and set struct_size.
 * @param[out] opts   options to fill (non-NULL).
 * @param[in]  preset an mbx_preset_t.
 * @return MBX_STATUS_OK, or INVALID_ARGUMENT for NULL / an unknown preset.
 */
MBX_API mbx_status_t mbx_options_init(mbx_options_t* opts, mbx_preset_t preset);

/** Look a preset up by name ("ssd_pytorch", "torchvision_ssd",
 *  "yhenon_retinanet", "torchvision_retinanet"). */
MBX_API mbx_status_t mbx_preset_from_name(const char* name, mbx_preset_t* preset);

/**
 * Set one option by name (the field's name, as in golden case.json files)
 * from text: enums by value name ("CORNERS", "LOW_QUALITY", "SIGMOID_FOCAL",
 * "PER_IMAGE", "DOUBLE_COUNT_POSITIVES", "SKIP", ...; mbx_option_choices()
 * lists them), numbers in C locale, booleans as true/false/1/0, `variances`
 * as four comma-separated numbers. The names are those of mbx_option_name().
 * Range checks happen when the options are used (mbx_options_validate).
 * @return INVALID_ARGUMENT for an unknown name, an unparsable value, or an
 *         option beyond the caller's (older) struct_size (opts unchanged).
 */
MBX_API mbx_status_t mbx_options_set(mbx_options_t* opts, const char* name,
                                     const char* value);

/** Check every option's range (docs/SPEC.md §7) without computing anything. */
MBX_API mbx_status_t mbx_options_validate(const mbx_options_t* opts);

/** A buffer of this many bytes always holds an option's text (mbx_options_get).
 *  @since 0.2 */
#define MBX_OPTION_TEXT_MAX 128

/**
 * Read one option as text, in the syntax mbx_options_set() accepts, so that
 * setting the text back gives the same value bitwise (numbers are written
 * with the fewest digits that round-trip; booleans as true/false; enums by
 * value name; `variances` as "a,b,c,d").
 * @param[in]  opts  options (initialised; struct_size checked as in set).
 * @param[in]  name  an option name (mbx_option_name()).
 * @param[out] buf   receives the NUL-terminated text (untouched on error).
 * @param[in]  size  bytes at buf; MBX_OPTION_TEXT_MAX always suffices.
 * @return INVALID_ARGUMENT for NULLs, an unknown name, an option beyond the
 *         caller's struct_size, or a buffer too small (the message says how
 *         many bytes the text needs).
 * @since 0.2
 */
MBX_API mbx_status_t mbx_options_get(const mbx_options_t* opts, const char* name, char* buf,
                                     size_t size);

/** Number of options this library knows (the fields of its mbx_options_t
 *  after struct_size, reserved fields excluded). @since 0.2 */
MBX_API int mbx_option_count(void);
/** Name of option `index` in [0, mbx_option_count()), in field order; NULL
 *  outside. Static storage. @since 0.2 */
MBX_API const char* mbx_option_name(int index);
/** Type of option `index`: "enum", "bool", "int", "float" or "float[4]";
 *  NULL outside the range. @since 0.2 */
MBX_API const char* mbx_option_type(int index);
/** Enum option `index`: its value names, comma-separated, in the order of
 *  their pinned values ("NONE,BEST_PRIOR_PER_GT,LOW_QUALITY"); "" for other
 *  types; NULL outside the range. @since 0.2 */
MBX_API const char* mbx_option_choices(int index);
/** One-line description of option `index`; NULL outside the range.
 *  @since 0.2 */
MBX_API const char* mbx_option_doc(int index);

/** Number of presets (mbx_preset_t values are 0 .. count-1). @since 0.2 */
MBX_API int mbx_preset_count(void);
/** Name of a preset ("ssd_pytorch", ...), the inverse of
 *  mbx_preset_from_name(); NULL for an unknown value. @since 0.2 */
MBX_API const char* mbx_preset_name(mbx_preset_t preset);

/* ------------------------------------------------------------------------ */
/* Context                                                                  */
/* ------------------------------------------------------------------------ */

/** Opaque: thread count, path, CUDA stream, cached workspace. */
typedef struct mbx_context_t mbx_context_t;

/** Create a context (all hardware threads, MBX_PATH_AUTO, default stream).
 *  @param[out] ctx receives the new context; the caller destroys it. */
MBX_API mbx_status_t mbx_context_create(mbx_context_t** ctx);
/** Destroy a context and free its workspace. NULL is a no-op. */
MBX_API void mbx_context_destroy(mbx_context_t* ctx);
/** Threads used by the CPU path; 0 = all hardware threads. Results do not
 *  depend on this number (bitwise). */
MBX_API mbx_status_t mbx_context_set_num_threads(mbx_context_t* ctx, int num_threads);
/** Force a path (MBX_PATH_AUTO: CUDA for CUDA tensors, else MBX_PATH_CPU).
 *  Returns MBX_STATUS_NO_DEVICE for a path not available in this process;
 *  later calls whose tensors live elsewhere than the forced path expects
 *  fail with MBX_STATUS_INVALID_ARGUMENT. */
MBX_API mbx_status_t mbx_context_set_path(mbx_context_t* ctx, mbx_path_t path);
/** CUDA stream (a cudaStream_t) for the CUDA path; NULL = legacy default
 *  stream. Calls are asynchronous on it. */
MBX_API mbx_status_t mbx_context_set_cuda_stream(mbx_context_t* ctx, void* stream);
/**
 * Validation of CUDA inputs (1, the default), with the CPU path's checks
 * and messages: the priors are checked on the device (one row is copied
 * back if one is bad) and the small gt_counts/gt_labels/gt_boxes tensors are
 * copied to the host, which synchronises the stream a few times per call.
 * 0: no host round trip; invalid GT rows are then skipped on the device as
 * with MBX_INVALID_GT_SKIP, and labels out of range make the prior negative.
 */
MBX_API mbx_status_t mbx_context_set_cuda_validation(mbx_context_t* ctx, int enabled);
/** Bytes of workspace currently cached by the context (diagnostics). */
MBX_API mbx_status_t mbx_context_workspace_bytes(const mbx_context_t* ctx, size_t* bytes);
/** Free the cached workspace now. */
MBX_API mbx_status_t mbx_context_release_workspace(mbx_context_t* ctx);

/**
 * Device workspace, in bytes, that the largest CUDA call with these options
 * and sizes needs (match + losses + gradients, with conf_target, matched_gt
 * and num_pos not given as outputs); every smaller call needs no more. For a
 * caller-provided workspace (mbx_context_set_workspace). Pure arithmetic: no
 * device is touched. MBX_STATUS_NO_DEVICE in a build without CUDA (the CPU
 * path caches host scratch in the context and takes no caller workspace).
 * @param opts        options of the calls (the loss kind decides the layout)
 * @param B, P, G, C  images, priors, GT rows per image, classes (all >= 1)
 * @param[out] bytes  the size
 */
MBX_API mbx_status_t mbx_workspace_size(const mbx_options_t* opts, int64_t B, int64_t P,
                                        int64_t G, int64_t C, size_t* bytes);
/**
 * Caller-provided device workspace (cuDNN style, for frameworks with their
 * own allocator): CUDA calls on `ctx` carve their scratch from
 * [ptr, ptr + bytes) and allocate nothing; the context's cached device
 * workspace is not used meanwhile. `ptr` must be device memory on the
 * tensors' device, 256-byte aligned, and must not be used by anything else
 * while calls on the context's stream may still run (it is stream-ordered
 * like the call). A call that needs more than `bytes` (see
 * mbx_workspace_size), or finds the pointer unusable, fails with
 * MBX_STATUS_INVALID_ARGUMENT and writes nothing. ptr = NULL (bytes = 0)
 * returns to the cached workspace. CPU-path calls ignore it.
 */
MBX_API mbx_status_t mbx_context_set_workspace(mbx_context_t* ctx, void* ptr, size_t bytes);

/* ------------------------------------------------------------------------ */
/* Matching                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * Match GT boxes to priors and encode regression targets (docs/SPEC.md §2, §3).
 *
 * @param ctx         context, or NULL for defaults (no workspace caching).
 * @param opts        options (prior_format, thresholds, force_match,
 *                    variances, encode_min_gt_wh, invalid_gt are used).
 * @param num_classes K, the number of object classes: labels must lie in
 *                    [0, K). Pass 0 to check only labels >= 0.
 * @param[in]  priors      float32 [P, 4] in opts->prior_format.
 * @param[in]  gt_boxes    float32 [B, G, 4] corners; rows >= gt_counts[b] unread.
 * @param[in]  gt_labels   int32 [B, G].
 * @param[in]  gt_counts   int32 [B], each in [0, G].
 * @param[out] conf_target int32 [B, P]: label+1 positive, 0 negative, -1 ignored.
 * @param[out] matched_gt  int32 [B, P]: GT row of a positive, else -1. May be NULL.
 * @param[out] loc_target  float32 [B, P, 4]: encoded targets, 0 where not
 *                         positive. May be NULL.
 * @param[out] num_pos     int32 [B]: positives per image. May be NULL.
 */
MBX_API mbx_status_t mbx_match(mbx_context_t* ctx, const mbx_options_t* opts,
                               int64_t num_classes, const DLTensor* priors,
                               const DLTensor* gt_boxes, const DLTensor* gt_labels,
                               const DLTensor* gt_counts, DLTensor* conf_target,
                               DLTensor* matched_gt, DLTensor* loc_target,
                               DLTensor* num_pos);

/* ------------------------------------------------------------------------ */
/* Loss                                                                     */
/* ------------------------------------------------------------------------ */

/**
 * Loss forward only (evaluation): no gradient memory is touched.
 *
 * Common inputs of the loss functions:
 * @param ctx        context, or NULL for defaults.
 * @param opts       options.
 * @param[in] priors    float32 [P, 4].
 * @param[in] gt_boxes  float32 [B, G, 4] corners.
 * @param[in] gt_labels int32 [B, G], labels in [0, K).
 * @param[in] gt_counts int32 [B].
 * @param[in] loc       float32, float16 or bfloat16 [B, P, 4] offsets (16-bit
 *                      inputs are computed in float32 on every path).
 * @param[in] conf      float32, float16 or bfloat16 [B, P, C] logits (the dtype
 *                      may differ from loc's);
 *                      SOFTMAX_CE: column 0 background, C >= 2;
 *                      SIGMOID_FOCAL: class k in column k.
 *
 * @param[out] loss    float32 or float64 [2]: (loss_loc, loss_conf), on the
 *                     tensors' device.
 * @param[out] num_pos int32 [B]: positives per image (for the caller's own
 *                     all-reduce with EXTERNAL normalisation). May be NULL.
 */
MBX_API mbx_status_t mbx_loss_forward(mbx_context_t* ctx, const mbx_options_t* opts,
                                      const DLTensor* priors, const DLTensor* gt_boxes,
                                      const DLTensor* gt_labels, const DLTensor* gt_counts,
                                      const DLTensor* loc, const DLTensor* conf,
                                      DLTensor* loss, DLTensor* num_pos);

/**
 * Gradients only: d loss_loc / d loc and d loss_conf / d conf, each times
 * the upstream gradient of its loss (docs/SPEC.md §4). Matching and mining are
 * recomputed (stateless); prefer mbx_loss_forward_backward in training.
 *
 * @param[in]  grad_loss  float32 or float64 [2]: upstream gradients of
 *                        (loss_loc, loss_conf), on the tensors' device (a
 *                        device scalar stays on the device). NULL = (1, 1).
 * @param[out] grad_loc   [B, P, 4], dtype of loc; every element written.
 * @param[out] grad_conf  [B, P, C], dtype of conf; every element written.
 */
MBX_API mbx_status_t mbx_loss_backward(mbx_context_t* ctx, const mbx_options_t* opts,
                                       const DLTensor* priors, const DLTensor* gt_boxes,
                                       const DLTensor* gt_labels, const DLTensor* gt_counts,
                                       const DLTensor* loc, const DLTensor* conf,
                                       const DLTensor* grad_loss, DLTensor* grad_loc,
                                       DLTensor* grad_conf);

/**
 * Fused forward + backward in one pass (the fastest training call).
 * Parameters as mbx_loss_forward and mbx_loss_backward; num_pos may be NULL.
 */
MBX_API mbx_status_t mbx_loss_forward_backward(
    mbx_context_t* ctx, const mbx_options_t* opts, const DLTensor* priors,
    const DLTensor* gt_boxes, const DLTensor* gt_labels, const DLTensor* gt_counts,
    const DLTensor* loc, const DLTensor* conf, const DLTensor* grad_loss,
    DLTensor* loss, DLTensor* num_pos, DLTensor* grad_loc, DLTensor* grad_conf);

/* ------------------------------------------------------------------------ */
/* Decoding and priors                                                      */
/* ------------------------------------------------------------------------ */

/**
 * Decode predicted offsets into corner boxes (inverse of docs/SPEC.md §3; the size
 * exponents are clamped at log(1000/16) as torchvision does).
 * Uses opts->prior_format and opts->variances.
 * @param[in]  priors float32 [P, 4].
 * @param[in]  loc    float32 [B, P, 4].
 * @param[out] boxes  float32 [B, P, 4] corners (x1, y1, x2, y2).
 */
MBX_API mbx_status_t mbx_decode(mbx_context_t* ctx, const mbx_options_t* opts,
                                const DLTensor* priors, const DLTensor* loc,
                                DLTensor* boxes);

/** Built-in SSD prior-box configurations (ssd.pytorch layer layout). */
typedef enum mbx_ssd_config_t {
  /** ssd.pytorch `voc` (SSD300, 8732 priors). */
  MBX_SSD300_VOC = 0,
  /** ssd.pytorch `coco` (SSD300, 8732 priors, smaller min sizes). */
  MBX_SSD300_COCO = 1,
  /** Caffe SSD512 VOC layout (7 maps, 24564 priors) in ssd.pytorch's scheme. */
  MBX_SSD512_VOC = 2
} mbx_ssd_config_t;

/**
 * Number of priors of an SSD configuration.
 * @param[out] num_priors P.
 */
MBX_API mbx_status_t mbx_priors_ssd_count(mbx_ssd_config_t config, int64_t* num_priors);

/**
 * SSD priors exactly as ssd.pytorch's PriorBox computes them (float64
 * arithmetic, rounded to float32, clipped to [0, 1]), CENTER_SIZE.
 * @param[out] priors float32 [P, 4] CPU tensor, P from mbx_priors_ssd_count.
 */
MBX_API mbx_status_t mbx_priors_ssd(mbx_ssd_config_t config, DLTensor* priors);

/**
 * Number of RetinaNet anchors for an image of height x width pixels
 * (pyramid levels 3..7, 9 anchors per location).
 */
MBX_API mbx_status_t mbx_priors_retinanet_count(int64_t image_height,
                                                int64_t image_width,
                                                int64_t* num_priors);

/**
 * RetinaNet anchors exactly as yhenon/pytorch-retinanet's Anchors module
 * computes them (levels 3..7, sizes 32..512, ratios .5/1/2, scales
 * 2^(0, 1/3, 2/3)), CORNERS in pixels.
 * @param[out] priors float32 [P, 4] CPU tensor.
 */
MBX_API mbx_status_t mbx_priors_retinanet(int64_t image_height, int64_t image_width,
                                          DLTensor* priors);

/** Number of pyramid levels of mbx_priors_retinanet. @since 0.3 */
#define MBX_RETINANET_NUM_LEVELS 5

/**
 * Priors per pyramid level of mbx_priors_retinanet (levels 3..7, in prior
 * order): what mbx_tensors_t::prior_levels takes under assigner=ATSS.
 * @param[out] prior_levels int32 [MBX_RETINANET_NUM_LEVELS] CPU tensor; the
 *             entries sum to mbx_priors_retinanet_count.
 * @since 0.3
 */
MBX_API mbx_status_t mbx_priors_retinanet_levels(int64_t image_height, int64_t image_width,
                                                 DLTensor* prior_levels);

/* ------------------------------------------------------------------------ */
/* One entry point for every operation, open to new inputs                  */
/* ------------------------------------------------------------------------ */

/** The operations of mbx_run(). Values are pinned. @since 0.2 */
typedef enum mbx_op_t {
  MBX_OP_MATCH = 0,                /**< as mbx_match */
  MBX_OP_LOSS_FORWARD = 1,         /**< as mbx_loss_forward */
  MBX_OP_LOSS_BACKWARD = 2,        /**< as mbx_loss_backward */
  MBX_OP_LOSS_FORWARD_BACKWARD = 3,/**< as mbx_loss_forward_backward */
  MBX_OP_DECODE = 4                /**< as mbx_decode */
} mbx_op_t;

/**
 * Every tensor (and the one scalar) an operation can take, by name. New
 * optional inputs and outputs are appended as fields (with @since), so a
 * new input never needs a new entry point, and a caller built against an
 * older header passes its smaller struct_size: the fields it lacks are NULL.
 * Initialise with mbx_tensors_init() (all NULL), then set what the
 * operation uses; the shapes and meanings are those of the per-operation
 * functions above. A non-NULL tensor the operation does not use is an
 * error (INVALID_ARGUMENT naming it), so nothing is silently ignored.
 * @since 0.2
 */
typedef struct mbx_tensors_t {
  size_t struct_size;          /**< sizeof(mbx_tensors_t) of the caller's header */
  int64_t num_classes;         /**< MATCH: K (labels in [0, K)); 0 = unchecked (default).
                                    Other operations take K from conf and need 0 here. */
  /* inputs */
  const DLTensor* priors;      /**< [P, 4]; every operation */
  const DLTensor* gt_boxes;    /**< [B, G, 4]; all but DECODE */
  const DLTensor* gt_labels;   /**< [B, G]; all but DECODE */
  const DLTensor* gt_counts;   /**< [B]; all but DECODE */
  const DLTensor* loc;         /**< [B, P, 4]; LOSS_* and DECODE */
  const DLTensor* conf;        /**< [B, P, C]; LOSS_* */
  const DLTensor* grad_loss;   /**< [2]; LOSS_BACKWARD, LOSS_FORWARD_BACKWARD; NULL = (1, 1) */
  /* outputs (NULL = not wanted, where the operation allows it) */
  DLTensor* conf_target;       /**< [B, P]; MATCH (required) */
  DLTensor* matched_gt;        /**< [B, P]; MATCH */
  DLTensor* loc_target;        /**< [B, P, 4]; MATCH */
  DLTensor* num_pos;           /**< [B]; MATCH, LOSS_FORWARD, LOSS_FORWARD_BACKWARD */
  DLTensor* loss;              /**< [2]; LOSS_FORWARD, LOSS_FORWARD_BACKWARD (required) */
  DLTensor* grad_loc;          /**< [B, P, 4]; LOSS_BACKWARD, LOSS_FORWARD_BACKWARD (required) */
  DLTensor* grad_conf;         /**< [B, P, C]; LOSS_BACKWARD, LOSS_FORWARD_BACKWARD (required) */
  DLTensor* boxes;             /**< [B, P, 4]; DECODE (required) */
  /* optional inputs (@since 0.3) */
  const DLTensor* gt_flags;    /**< [B, G] int32; MATCH and LOSS_*; NULL = all 0. Bit 0: the row
                                    is an ignore region (crowd / difficult): never positive, and
                                    priors inside it are ignored (docs/SPEC.md). Other bits are
                                    reserved and must be 0. @since 0.3 */
  const DLTensor* prior_levels;/**< [L] int32; MATCH and LOSS_*; priors per pyramid level in
                                    prior order (each >= 0, sum = P), read by assigner=ATSS;
                                    NULL = one level of P priors. Host memory, or the device
                                    of the other inputs. @since 0.3 */
} mbx_tensors_t;

/** Set every field of @p tensors to NULL / 0 and struct_size to
 *  sizeof(mbx_tensors_t). @return INVALID_ARGUMENT for NULL. @since 0.2 */
MBX_API mbx_status_t mbx_tensors_init(mbx_tensors_t* tensors);

/**
 * Run one operation: the same validation, dispatch and results as the
 * operation's own function (mbx_match, mbx_loss_*, mbx_decode are thin
 * wrappers over it).
 * @param ctx      context, or NULL for defaults.
 * @param opts     options.
 * @param op       an mbx_op_t.
 * @param tensors  the operation's tensors (mbx_tensors_init, then set).
 * @return as the operation's function; INVALID_ARGUMENT also for an
 *         unknown op, a bad struct_size, or a tensor the op does not use.
 * @since 0.2
 */
MBX_API mbx_status_t mbx_run(mbx_context_t* ctx, const mbx_options_t* opts, mbx_op_t op,
                             const mbx_tensors_t* tensors);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MBX_MBX_H_ */
