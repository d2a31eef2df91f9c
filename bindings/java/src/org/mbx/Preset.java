package org.mbx;

/** Option presets reproducing the well-known implementations (SPEC §5). */
public enum Preset {
  /** amdegroot/ssd.pytorch MultiBoxLoss. */
  SSD_PYTORCH("ssd_pytorch", 0),
  /** torchvision 0.14 SSD compute_loss. */
  TORCHVISION_SSD("torchvision_ssd", 1),
  /** yhenon/pytorch-retinanet FocalLoss. */
  YHENON_RETINANET("yhenon_retinanet", 2),
  /** torchvision 0.14 RetinaNet compute_loss. */
  TORCHVISION_RETINANET("torchvision_retinanet", 3);

  private final String libraryName;
  private final int code;

  Preset(String libraryName, int code) {
    this.libraryName = libraryName;
    this.code = code;
  }

  /** The name used by the C API and golden case.json ("ssd_pytorch", ...). */
  public String libraryName() {
    return libraryName;
  }

  int code() {
    return code;
  }
}
