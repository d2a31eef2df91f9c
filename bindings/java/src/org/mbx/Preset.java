package org.mbx;

import org.mbx.internal.mbx_native;
import org.mbx.internal.mbx_preset_t;

/** Option presets reproducing the well-known implementations (docs/SPEC.md §5). */
public enum Preset {
  /** amdegroot/ssd.pytorch MultiBoxLoss. */
  SSD_PYTORCH(mbx_preset_t.MBX_PRESET_SSD_PYTORCH),
  /** torchvision 0.14 SSD compute_loss. */
  TORCHVISION_SSD(mbx_preset_t.MBX_PRESET_TORCHVISION_SSD),
  /** yhenon/pytorch-retinanet FocalLoss. */
  YHENON_RETINANET(mbx_preset_t.MBX_PRESET_YHENON_RETINANET),
  /** torchvision 0.14 RetinaNet compute_loss. */
  TORCHVISION_RETINANET(mbx_preset_t.MBX_PRESET_TORCHVISION_RETINANET),
  /** weiliu89/caffe SSD MultiBoxLoss (ssd_pascal.py). */
  CAFFE_SSD(mbx_preset_t.MBX_PRESET_CAFFE_SSD),
  /** sgrvinod a-PyTorch-Tutorial-to-Object-Detection MultiBoxLoss. */
  SGRVINOD_SSD(mbx_preset_t.MBX_PRESET_SGRVINOD_SSD);

  private final mbx_preset_t raw;

  Preset(mbx_preset_t raw) {
    this.raw = raw;
  }

  /** The name used by the C API and golden case.json ("ssd_pytorch", ...): mbx_preset_name(). */
  public String libraryName() {
    return mbx_native.mbx_preset_name(raw);
  }

  mbx_preset_t raw() {
    return raw;
  }

  /** The preset with the given C value, or null. */
  static Preset fromCode(int code) {
    for (Preset p : values()) {
      if (p.raw.swigValue() == code) {
        return p;
      }
    }
    return null;
  }
}
