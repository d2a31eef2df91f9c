package org.mbx;

import org.mbx.internal.mbx_ssd_config_t;

/** Built-in SSD prior-box layouts ({@code mbx_ssd_config_t}). */
public enum SsdConfig {
  /** ssd.pytorch {@code voc}: SSD300, 8732 priors. */
  SSD300_VOC(mbx_ssd_config_t.MBX_SSD300_VOC),
  /** ssd.pytorch {@code coco}: SSD300, 8732 priors. */
  SSD300_COCO(mbx_ssd_config_t.MBX_SSD300_COCO),
  /** Caffe SSD512 VOC layout, 24564 priors. */
  SSD512_VOC(mbx_ssd_config_t.MBX_SSD512_VOC);

  private final mbx_ssd_config_t raw;

  SsdConfig(mbx_ssd_config_t raw) {
    this.raw = raw;
  }

  mbx_ssd_config_t raw() {
    return raw;
  }
}
