package org.mbx;

/** Built-in SSD prior-box layouts ({@code mbx_ssd_config_t}). */
public enum SsdConfig {
  /** ssd.pytorch {@code voc}: SSD300, 8732 priors. */
  SSD300_VOC(0),
  /** ssd.pytorch {@code coco}: SSD300, 8732 priors. */
  SSD300_COCO(1),
  /** Caffe SSD512 VOC layout, 24564 priors. */
  SSD512_VOC(2);

  private final int code;

  SsdConfig(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }
}
